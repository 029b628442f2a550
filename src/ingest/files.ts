import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from '../db/pool';
import { isPulledRecordSource } from '../domain/sources';
import { ReconError } from '../domain/errors';
import { FileRejectedError, formatFromPath, readRows, type FileFormat } from '../sources/rows';
import { importClaimRows } from './claims-import';
import { importRecordRows } from './records-import';
import { mappedColumns } from './record-row';
import { loadContractHistory } from '../db/contracts';
import { versionMappingSource } from '../domain/contract-history';
import type { ImportSummary } from './staging';

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The file exists and is a file, and its format is known (given, or from its name). */
export async function checkFile(file: string, format?: FileFormat): Promise<FileFormat> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error('not a file');
  } catch {
    throw new ReconError('file_not_found', `${file}: no such file`);
  }
  const f = format ?? formatFromPath(file);
  if (!f) throw new ReconError('unknown_format', `${file}: cannot tell the format from the name; use .csv or .jsonl`);
  return f;
}

/** A whole-file problem (no header, duplicate columns) names the file and stops the import. */
async function withFileErrors<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // The message already names the file as the user gave it.
    if (err instanceof FileRejectedError) throw new ReconError(err.code, err.message);
    throw err;
  }
}

/**
 * A claims CSV without one of these columns cannot hold a single valid claim: the file is refused
 * whole, naming it, instead of every row being quarantined. A file with a retracted column may
 * carry retractions only, which need no more than the claim id.
 */
export function claimColumnsRequired(header: string[]): string[] {
  return header.includes('retracted') ? ['claim_id'] : ['claim_id', 'outcome_type', 'subject_ref', 'occurred_at'];
}

/** Reports the rows read so far (every 1000 rows), for a progress line; the rows pass unchanged. */
async function* counted<T>(rows: AsyncIterable<T>, onProgress?: (rowsRead: number) => void): AsyncGenerator<T> {
  let n = 0;
  for await (const r of rows) {
    if (onProgress && ++n % 1000 === 0) onProgress(n);
    yield r;
  }
}

export async function importClaimsFile(
  pool: Pool,
  args: {
    tenant: string;
    file: string;
    format?: FileFormat;
    source?: string;
    now?: Date;
    onProgress?: (rowsRead: number) => void;
  },
): Promise<ImportSummary> {
  const format = await checkFile(args.file, args.format);
  const sha = await fileSha256(args.file);
  return withFileErrors(args.file, () =>
    importClaimRows(pool, {
      tenant: args.tenant,
      source: args.source ?? 'file',
      origin: path.basename(args.file),
      contentSha256: sha,
      rows: counted(
        readRows(args.file, format, format === 'csv' ? { requiredColumns: claimColumnsRequired } : {}),
        args.onProgress,
      ),
      receivedAt: args.now ?? new Date(),
    }),
  );
}

export async function importRecordsFile(
  pool: Pool,
  args: {
    tenant: string;
    source: string;
    file: string;
    format?: FileFormat;
    now?: Date;
    onProgress?: (rowsRead: number) => void;
  },
): Promise<ImportSummary> {
  const format = await checkFile(args.file, args.format);
  const sha = await fileSha256(args.file);
  const history = await loadContractHistory(pool, args.tenant);
  const source = versionMappingSource(history, args.source)?.body.recordSources[args.source];
  if (source && isPulledRecordSource(source)) {
    throw new ReconError(
      'not_a_file_source',
      `record source "${args.source}" of ${args.tenant} is pulled from ${source.kind === 'zendesk' ? 'Zendesk' : 'HubSpot'} by the night, not imported from files; \`recon source status --tenant ${args.tenant}\` shows its last pull`,
    );
  }
  if (source && source.format !== format) {
    throw new ReconError(
      'wrong_format',
      `${args.file}: record source "${args.source}" takes ${source.format === 'csv' ? 'CSV' : 'JSON Lines'} (.${source.format}), this file is ${format === 'csv' ? 'CSV' : 'JSON Lines'}; export it as ${source.format}`,
    );
  }
  const requiredColumns = format === 'csv' && source ? mappedColumns(source) : [];
  return withFileErrors(args.file, () =>
    importRecordRows(pool, {
      tenant: args.tenant,
      source: args.source,
      origin: path.basename(args.file),
      contentSha256: sha,
      rows: counted(readRows(args.file, format, { requiredColumns }), args.onProgress),
      importedAt: args.now ?? new Date(),
      history,
    }),
  );
}
