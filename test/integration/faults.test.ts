import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { connectClient } from '../../src/temporal/connection';
import { installRuntime } from '../../src/temporal/runtime';
import { makeStory } from '../faults/data';
import { compareLedgers } from '../faults/compare';
import { connectionDrop, sigkill, sinkAmbiguous, type KillRecord, type SinkFaultRecord } from '../faults/faults';
import { runScenario, type RunResult } from '../faults/scenario';
import { pullCountDifferences } from '../faults/pulled';
import { adminUrlOf, freshDatabaseOn, type ScenarioStack } from '../faults/stack';

// The short version of `npm run test:faults`: a smaller story over three nights, the production
// worker in its own process killed with SIGKILL right after an activity completes (two seeds), and
// a connection terminated mid-transaction, and the billing sink taking a request and dropping the
// connection before answering (the resend must be recognised). Every run ends with the sink's
// invoice items equal to the ledger. Kills inside an activity wait out its heartbeat timeout (two
// minutes) and are left to the full suite.
const NIGHTS = 3;
const TICKETS = 40;

describe('fault injection (short)', () => {
  let client: Client;
  let dir: string;
  let reference: RunResult;
  const story = makeStory(7, TICKETS);
  const suffix = Math.random().toString(36).slice(2, 7);
  const stack: ScenarioStack = {
    temporalAddress: inject('temporalAddress'),
    adminUrl: adminUrlOf(inject('databaseUrl')),
    freshDatabase: (name) => freshDatabaseOn(inject('databaseUrl'), name),
    workflowBundle: inject('workflowBundlePath'),
  };
  const log = (m: string) => process.env.FAULTS_VERBOSE && console.log(m);
  const run = (name: string, hooks: Parameters<typeof runScenario>[4]) =>
    runScenario(stack, client, story, `${name}-${suffix}`, hooks, dir, log, NIGHTS);

  beforeAll(async () => {
    installRuntime('ERROR');
    client = await connectClient(inject('temporalAddress'), 'default');
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-faults-it-'));
    reference = await run('ref', {});
  });
  afterAll(async () => {
    await client?.connection.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the reference run bills outcomes, once each, and the sink holds exactly the ledger', () => {
    expect(reference.csv.toString()).toContain(',charge,');
    expect(reference.duplicates).toBe(0);
    expect(reference.sink.items).toBeGreaterThan(0);
    expect(reference.sink).toMatchObject({ duplicates: 0, lost: 0, problems: [] });
    // The second tenant, pulled from a Zendesk emulator and the AI side's PostgreSQL, bills too.
    expect(reference.pulled.csv.toString()).toContain(',charge,');
    expect(reference.pulled.duplicates).toBe(0);
    expect(reference.pulled.counts.versions).toBeGreaterThan(0);
  });

  it('a SIGKILLed worker, a dropped connection and an answer lost by the sink end with the reference ledger', async () => {
    const kills: KillRecord[] = [];
    const drops: string[] = [];
    const sinkFaults: SinkFaultRecord[] = [];
    const runs = await Promise.all([
      run(
        'kill-3',
        sigkill(3, (k) => kills.push(k), { nights: NIGHTS, after: true }),
      ),
      run(
        'kill-6',
        sigkill(6, (k) => kills.push(k), { nights: NIGHTS, after: true }),
      ),
      run(
        'drop-2',
        connectionDrop(2, (d) => drops.push(d), NIGHTS),
      ),
      run(
        'sinkambiguous-3',
        sinkAmbiguous(3, (f) => sinkFaults.push(f), NIGHTS),
      ),
    ]);
    expect(kills).toHaveLength(2);
    expect(drops).toHaveLength(1);
    expect(drops[0]).not.toMatch(/no transaction seen/);
    expect(sinkFaults).toHaveLength(1);
    expect(sinkFaults[0].struck).toBeGreaterThan(0);
    for (const r of runs) {
      const cmp = compareLedgers(reference.csv, r.csv);
      const pulled = compareLedgers(reference.pulled.csv, r.pulled.csv);
      expect({
        duplicates: r.pulled.duplicates + pulled.duplicates,
        lost: pulled.lost,
        sameUpToIds: pulled.sameUpToIds,
        pulls: pullCountDifferences(reference.pulled.counts, r.pulled.counts),
      }).toEqual({ duplicates: 0, lost: 0, sameUpToIds: true, pulls: [] });
      expect({
        duplicates: r.duplicates + cmp.duplicates,
        lost: cmp.lost,
        sameUpToIds: cmp.sameUpToIds,
        sinkDuplicates: r.sink.duplicates,
        sinkLost: r.sink.lost,
        sinkProblems: r.sink.problems,
      }).toEqual({
        duplicates: 0,
        lost: 0,
        sameUpToIds: true,
        sinkDuplicates: 0,
        sinkLost: 0,
        sinkProblems: [],
      });
    }
    expect(runs[0].workerStarts).toBe(2);
  });
});
