import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Pool, PoolClient } from '../db/pool';
import { ReconError } from '../domain/errors';
import { importClaimRows } from '../ingest/claims-import';
import type { ImportSummary } from '../ingest/staging';
import { nulCharacterReason, type RowResult } from './rows';

/** The claims API answers a page of claims and the cursor to ask for next (null: caught up). */
export const ClaimPageSchema = z.object({
  claims: z.array(z.unknown()),
  next_cursor: z.string().nullable(),
});

export interface PageResult {
  cursor: string | null;
  import: ImportSummary;
  caughtUp: boolean;
}

export async function readCursor(pool: Pool, tenant: string, source: string): Promise<string | null> {
  const { rows } = await pool.query<{ cursor: string | null }>(
    'select cursor from claim_cursors where tenant_id = $1 and source = $2',
    [tenant, source],
  );
  return rows[0]?.cursor ?? null;
}

async function saveCursor(db: PoolClient, tenant: string, source: string, cursor: string | null): Promise<void> {
  await db.query(
    `insert into claim_cursors (tenant_id, source, cursor, pages) values ($1, $2, $3, 1)
     on conflict (tenant_id, source) do update set cursor = excluded.cursor, pages = claim_cursors.pages + 1, updated_at = now()`,
    [tenant, source, cursor],
  );
}

// The importer takes rows as an async iterable (files stream theirs); this page is in memory already.
// eslint-disable-next-line @typescript-eslint/require-await
async function* pageRows(items: unknown[], origin: string): AsyncGenerator<RowResult> {
  let row = 0;
  for (const item of items) {
    row++;
    const raw = JSON.stringify(item) ?? 'undefined';
    if (!item || typeof item !== 'object' || Array.isArray(item)) {
      yield {
        ok: false,
        position: { line: row, row },
        raw,
        code: 'not_an_object',
        reason: `${origin} item ${row}: expected a JSON object`,
      };
    } else if (nulCharacterReason(item) !== undefined) {
      yield {
        ok: false,
        position: { line: row, row },
        raw,
        code: 'nul_character',
        reason: `${origin} item ${row}: ${nulCharacterReason(item)}`,
      };
    } else {
      yield { ok: true, position: { line: row, row }, raw, values: item as Record<string, unknown> };
    }
  }
}

/**
 * Fetches the page after the saved cursor and imports it; the new cursor is saved in the same
 * transaction as the claims it covers, so a crash between the two cannot skip or double a page.
 */
export async function pullClaimPage(
  pool: Pool,
  args: { tenant: string; source: string; url: string; pageSize: number; now: Date; timeoutMs?: number },
): Promise<PageResult> {
  const cursor = await readCursor(pool, args.tenant, args.source);
  const url = new URL(args.url);
  url.searchParams.set('limit', String(args.pageSize));
  if (cursor) url.searchParams.set('cursor', cursor);
  let text: string;
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(args.timeoutMs ?? 30_000),
      headers: { accept: 'application/json' },
    });
    text = await res.text();
    if (!res.ok)
      throw new ReconError(
        'claims_http_status',
        `claims source ${args.source} answered ${res.status} for ${url.pathname}`,
      );
  } catch (err) {
    if (err instanceof ReconError) throw err;
    throw new ReconError(
      'claims_http_unreachable',
      `claims source ${args.source} unreachable: ${(err as Error).message}`,
    );
  }
  let page: z.infer<typeof ClaimPageSchema>;
  try {
    page = ClaimPageSchema.parse(JSON.parse(text));
  } catch (err) {
    // A truncated or malformed page is retried (the source may be mid-deploy), never half-imported.
    throw new ReconError(
      'claims_http_bad_page',
      `claims source ${args.source} sent an unreadable page after cursor ${cursor ?? '(start)'}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const origin = `${args.source}@${cursor ?? 'start'}`;
  const nextCursor = page.next_cursor ?? cursor;
  const summary = await importClaimRows(pool, {
    tenant: args.tenant,
    source: args.source,
    origin,
    contentSha256: createHash('sha256')
      .update(`${cursor ?? ''}\n${text}`)
      .digest('hex'),
    rows: pageRows(page.claims, origin),
    receivedAt: args.now,
    beforeCommit: (db) => saveCursor(db, args.tenant, args.source, nextCursor),
  });
  return {
    cursor: nextCursor,
    import: summary,
    caughtUp: page.claims.length === 0 || page.next_cursor === null || page.next_cursor === cursor,
  };
}
