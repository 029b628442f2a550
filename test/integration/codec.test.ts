import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { ENCRYPTED_ENCODING, dataConverterFromEnv } from '../../src/temporal/codec';
import { connectClient, connectWorker } from '../../src/temporal/connection';
import { openDisputeViaTemporal } from '../../src/temporal/dispute-client';
import { runReconciliation } from '../../src/temporal/run-client';
import { installRuntime } from '../../src/temporal/runtime';
import { createWorker } from '../../src/temporal/worker';
import { disputeWorkflowId } from '../../workflows/dispute-messages';
import { runWorkflowId } from '../../workflows/messages';
import { applyExample, uniqueTenant, writeLines } from './harness';

// Payload encryption on the real Temporal server: a client and a worker holding RECON_PAYLOAD_KEY
// run a night and a dispute as usual, while the history the server keeps, read without the key,
// holds only ciphertext.

const PERSONAL = ['jane.doe@example.com', 'Jane Doe', 'Customer Jane'];

interface FoundPayload {
  path: string;
  encoding: string;
  data: Buffer;
}

/** Every Payload in a history (any object with metadata and data), with where it sits. */
function payloadsIn(value: unknown, at = 'history', out: FoundPayload[] = []): FoundPayload[] {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return out;
  const v = value as Record<string, unknown>;
  if (v.data instanceof Uint8Array && v.metadata && typeof v.metadata === 'object') {
    const enc = (v.metadata as Record<string, Uint8Array>).encoding;
    out.push({ path: at, encoding: enc ? Buffer.from(enc).toString('utf8') : '', data: Buffer.from(v.data) });
    return out;
  }
  for (const [k, child] of Object.entries(v)) payloadsIn(child, `${at}.${k}`, out);
  return out;
}

describe('payload codec on the real Temporal server', () => {
  const env = { RECON_PAYLOAD_KEY: randomBytes(32).toString('base64') };
  const tenant = uniqueTenant('codec');
  const taskQueue = `it-codec-${randomUUID()}`;
  let pool: Pool;
  let client: Client;
  let raw: Client;
  let connection: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;

  beforeAll(async () => {
    installRuntime('WARN');
    pool = createPool(inject('databaseUrl'));
    const address = inject('temporalAddress');
    client = await connectClient(address, 'default', env);
    raw = await connectClient(address, 'default', {});
    connection = await connectWorker(address, {});
    worker = await createWorker({
      connection,
      namespace: 'default',
      taskQueue,
      deps: { pool },
      bundle: { codePath: inject('workflowBundlePath') },
      env,
    });
    running = worker.run();
    await applyExample(pool, tenant);
  });

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await client?.connection.close();
    await raw?.connection.close();
    await pool?.end();
  });

  it('runs a night and a dispute with the codec, and the server keeps only ciphertext', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-codec-'));
    await importClaimsFile(pool, {
      tenant,
      file: await writeLines(dir, 'claims.jsonl', [
        JSON.stringify({
          claim_id: 'c-1',
          outcome_type: 'resolved_ticket',
          subject_ref: 'T-7001',
          occurred_at: '2026-03-02T10:00:00Z',
          attributes: { requester: 'jane.doe@example.com' },
        }),
      ]),
    });
    await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, 'tickets.csv', [
        'Ticket ID,Status,Solved at,Updated at,CSAT',
        'T-7001,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,5',
      ]),
    });

    const asOf = '2026-03-03T00:00:00.000Z';
    const summary = await runReconciliation(client, { tenant, asOf: new Date(asOf), taskQueue });
    // The codec client reads the result back as usual.
    expect(summary).toMatchObject({ tenant, asOf });

    const { rows } = await pool.query<{ outcome_id: number }>(
      `select outcome_id from outcomes where tenant_id = $1 and subject_key = 't-7001'`,
      [tenant],
    );
    const view = await openDisputeViaTemporal(client, {
      tenant,
      outcomeId: Number(rows[0].outcome_id),
      actor: 'support:alice',
      reason: `Customer Jane (jane.doe@example.com) says T-7001 is still broken`,
      taskQueue,
    });
    expect(view.status).toBe('open');

    const ids = [runWorkflowId(tenant, asOf), disputeWorkflowId(tenant, Number(rows[0].outcome_id))];
    for (const id of ids) {
      // Read as someone without the key would: the raw history from the server.
      const history = await raw.workflow.getHandle(id).fetchHistory();
      const found = payloadsIn(history);
      // Search attributes are indexed, so never encrypted (item 3 keeps them free of personal data);
      // patch markers are written by Temporal's core SDK and hold only the patch id.
      const data = found.filter(
        (p) => !p.path.includes('searchAttributes') && !p.path.includes('details.patch-data') && p.data.length > 0,
      );
      expect(data.length, id).toBeGreaterThan(2);
      for (const p of data) {
        expect(p.encoding, `${id} ${p.path}`).toBe(ENCRYPTED_ENCODING);
        for (const word of [tenant, 'T-7001', 'alice', ...PERSONAL])
          expect(p.data.includes(word), `${id} ${p.path} shows ${word}`).toBe(false);
      }
      // What stays readable holds nothing personal.
      for (const p of found) for (const word of PERSONAL) expect(p.data.includes(word), `${id} ${p.path}`).toBe(false);
      for (const p of found.filter((x) => x.path.includes('details.patch-data')))
        expect(JSON.parse(p.data.toString('utf8')), `${id} ${p.path}`).toMatchObject({ id: expect.any(String) });
    }

    // Without the key, the result cannot be read at all.
    await expect(raw.workflow.getHandle(ids[0]).result()).rejects.toThrow(/encoding/i);
  });

  it('replays the histories recorded without the codec (turning it on breaks nothing old)', async () => {
    const dir = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const history = historyFromJSON(JSON.parse(await readFile(path.join(dir, file), 'utf8')));
      await Worker.runReplayHistory(
        { workflowBundle: { codePath: inject('workflowBundlePath') }, dataConverter: dataConverterFromEnv(env) },
        history,
        path.basename(file, '.json'),
      );
    }
  });

  it('refuses to start a client or a worker with a malformed key', async () => {
    const bad = { RECON_PAYLOAD_KEY: 'bm90IGEga2V5' };
    const message =
      'RECON_PAYLOAD_KEY must be the base64 of exactly 32 bytes (make one with `openssl rand -base64 32`); got 9 bytes';
    await expect(connectClient(inject('temporalAddress'), 'default', bad)).rejects.toMatchObject({
      code: 'invalid_payload_key',
      message,
    });
    await expect(connectWorker(inject('temporalAddress'), bad)).rejects.toMatchObject({
      code: 'invalid_payload_key',
      message,
    });
    await expect(
      createWorker({
        connection,
        namespace: 'default',
        taskQueue: `${taskQueue}-bad`,
        deps: { pool },
        bundle: { codePath: inject('workflowBundlePath') },
        env: bad,
      }),
    ).rejects.toMatchObject({
      code: 'invalid_payload_key',
      message,
    });
  });
});
