import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Contract } from '../../src/domain/contract';
import { startHubspotEmulator, type HubspotEmulatorHandle } from '../../src/emulators/hubspot';
import { importClaimsFile } from '../../src/ingest/files';
import { runReconciliation } from '../../src/temporal/run-client';
import { readSourceCursor } from '../../src/sources/record-pull';
import { applyExample, startHarness, uniqueTenant, writeLines, type Harness } from './harness';

// Nights whose evidence is pulled from HubSpot, never exported to a file: a won deal's stage-entered
// date is the success time, and only what changed is asked for the next night.

const TOKEN = 'pat-na1-night-token';

describe('nights with a HubSpot deals source', () => {
  let h: Harness;
  let crm: HubspotEmulatorHandle;
  const tenant = uniqueTenant('hs-night');
  const night = (asOf: string) => runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });
  const states = async () => {
    const { rows } = await h.pool.query<{ subject_key: string; state: string }>(
      `select subject_key, state from outcomes where tenant_id = $1 order by subject_key`,
      [tenant],
    );
    return Object.fromEntries(rows.map((r) => [r.subject_key, r.state]));
  };

  beforeAll(async () => {
    h = await startHarness({ sourceEnv: { HUBSPOT_TOKEN: TOKEN } });
    crm = await startHubspotEmulator({
      secret: TOKEN,
      seed: {
        deals: [
          { modifiedAt: '2026-03-02T16:00:00Z', properties: { dealname: 'won', dealstage: 'closedwon', amount: 900 } },
          { modifiedAt: '2026-03-02T16:00:00Z', properties: { dealname: 'open', dealstage: 'contractsent' } },
        ],
      },
    });
    await applyExample(h.pool, tenant, {
      recordSources: {
        crm: {
          kind: 'hubspot',
          objectType: 'deals',
          successStage: 'closedwon',
          tokenEnv: 'HUBSPOT_TOKEN',
          apiBase: crm.url,
          startTime: '2026-01-01T00:00:00Z',
        },
      },
      outcomeTypes: {
        won_deal: {
          recordSource: 'crm',
          matchKey: { field: 'deal_id', caseInsensitive: false },
          success: { eq: ['stage', 'closedwon'] },
          successTimeField: 'stage_entered_at',
          graceWindow: 'PT24H',
          evidenceDeadline: 'P30D',
          unitPrice: '25.00',
        },
      },
    } as unknown as Partial<Contract>);
    const claims = ['1', '2'].map((id) =>
      JSON.stringify({
        claim_id: `c-${id}`,
        outcome_type: 'won_deal',
        subject_ref: id,
        occurred_at: '2026-03-02T12:00:00Z',
      }),
    );
    await importClaimsFile(h.pool, { tenant, file: await writeLines(h.dir, `${tenant}.jsonl`, claims) });
  });
  afterAll(async () => {
    await crm?.close();
    await h?.stop();
  });

  it('confirms won deals pulled by the night, and the next night asks only what changed', async () => {
    await night('2026-03-03T07:00:00Z');
    expect(await states()).toEqual({ '1': 'in_grace', '2': 'awaiting_evidence' });
    const searches = crm.state().searches;
    expect(searches).toBeGreaterThanOrEqual(1);

    // Deal 2 is won "on 2026-03-03 at noon" (the emulator's writes are stamped with its clock).
    crm.update('deals', '2', { dealstage: 'closedwon' }, '2026-03-03T12:00:00Z');
    await night('2026-03-04T10:00:00Z');
    expect(await states()).toEqual({ '1': 'billed', '2': 'in_grace' });
    await night('2026-03-05T10:00:00Z');
    expect(await states()).toEqual({ '1': 'billed', '2': 'billed' });
    const row = await readSourceCursor(h.pool, tenant, 'crm');
    expect(row?.last_error).toBeNull();
    expect(row?.rows_received).toBe(3);
  });
});
