import type { Client, WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import pg from 'pg';
import { NIGHT_STEPS, type NightStep } from '../../workflows/messages';
import type { Fault } from '../../src/emulators/common';
import { NIGHTS, rng } from './data';
import type { FaultHooks, RunContext } from './scenario';

/** Every activity of reconcileTenant, in the order a night runs them. */
export const ACTIVITIES = NIGHT_STEPS;
export type ActivityName = NightStep;

const { temporal } = proto;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SCHEDULED = temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED;
const COMPLETED = temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED;

/**
 * Resolves true when the workflow schedules (or, with `completed`, finishes) `activity`, seen by
 * long-polling its history; false when the workflow closes first.
 */
export async function whenActivity(
  client: Client,
  handle: WorkflowHandle,
  activity: string,
  stage: 'scheduled' | 'completed' = 'scheduled',
): Promise<boolean> {
  let nextPageToken: Uint8Array | undefined;
  const scheduledIds = new Set<string>();
  for (;;) {
    let res;
    try {
      res = await client.workflowService.getWorkflowExecutionHistory({
        namespace: 'default',
        execution: { workflowId: handle.workflowId },
        waitNewEvent: true,
        nextPageToken,
      });
    } catch {
      await sleep(200);
      continue;
    }
    for (const e of res.history?.events ?? []) {
      if (e.eventType === SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === activity) {
        if (stage === 'scheduled') return true;
        scheduledIds.add(String(e.eventId));
      }
      if (
        e.eventType === COMPLETED &&
        scheduledIds.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId))
      )
        return true;
      if (
        e.workflowExecutionCompletedEventAttributes ||
        e.workflowExecutionFailedEventAttributes ||
        e.workflowExecutionContinuedAsNewEventAttributes
      )
        return false;
    }
    if (!res.nextPageToken?.length) return false;
    nextPageToken = res.nextPageToken;
  }
}

/** Activities pending on the workflow right now, as "name:state". */
export async function pendingActivities(client: Client, handle: WorkflowHandle): Promise<string[]> {
  const d = await client.workflowService.describeWorkflowExecution({
    namespace: 'default',
    execution: { workflowId: handle.workflowId },
  });
  return (d.pendingActivities ?? []).map(
    (a) =>
      `${a.activityType?.name}:${temporal.api.enums.v1.PendingActivityState[a.state ?? 0].replace('PENDING_ACTIVITY_STATE_', '').toLowerCase()}`,
  );
}

export interface KillRecord {
  seed: number;
  target: ActivityName;
  night: number;
  /** What was pending when the worker died (empty: between activities, in a workflow task). */
  pendingAtKill: string[];
}

/**
 * SIGKILL of the worker process when the seed's activity of the seed's night is scheduled (plus a
 * random delay), or just after it completed (`after`: the crash hits the workflow task that
 * records it, which Temporal hands to the next worker within seconds instead of the activity's
 * heartbeat timeout).
 */
export function sigkill(
  seed: number,
  record: (k: KillRecord) => void,
  opts: { nights?: number; after?: boolean } = {},
): FaultHooks {
  const r = rng(seed * 7919 + 1);
  const target = ACTIVITIES[seed % ACTIVITIES.length];
  // Night 0 has no reversals or disputes yet; later nights exercise more.
  const night = 1 + Math.floor(r() * ((opts.nights ?? NIGHTS.length) - 1));
  const delay = Math.floor(r() * 120);
  const downMs = 300 + Math.floor(r() * 2000);
  const strike = async (ctx: RunContext, n: number, handle: WorkflowHandle) => {
    if (n !== night) return;
    if (!(await whenActivity(ctx.client, handle, target, opts.after ? 'completed' : 'scheduled'))) return;
    if (!opts.after) await sleep(delay);
    await ctx.worker.kill();
    const pendingAtKill = await pendingActivities(ctx.client, handle).catch(() => []);
    record({ seed, target, night, pendingAtKill });
    ctx.log(
      `SIGKILL ${opts.after ? 'after' : 'at'} ${target}${opts.after ? '' : `+${delay}ms`} in night ${night}; pending ${pendingAtKill.join(',') || '(none)'}`,
    );
    await sleep(downMs);
    await ctx.worker.start();
  };
  // Only the pulled tenant's night pulls records: a kill aimed at pullRecords strikes that night.
  return target === 'pullRecords' ? { duringPulledNight: strike } : { duringNight: strike };
}

/** The Temporal dev server stopped (SIGTERM or SIGKILL) mid-run and started again on its database file. */
export function temporalRestart(seed: number): FaultHooks {
  const r = rng(seed * 104729 + 3);
  const target = ACTIVITIES[1 + Math.floor(r() * (ACTIVITIES.length - 1))];
  const night = 1 + Math.floor(r() * (NIGHTS.length - 1));
  const signal: NodeJS.Signals = seed % 2 ? 'SIGKILL' : 'SIGTERM';
  return {
    async duringNight(ctx, n, handle) {
      if (n !== night) return;
      if (!(await whenActivity(ctx.client, handle, target))) return;
      await sleep(Math.floor(r() * 100));
      await ctx.stack.temporal!.halt!(signal);
      ctx.log(`Temporal stopped (${signal}) at ${target} in night ${night}`);
      await sleep(2000 + Math.floor(r() * 3000));
      await ctx.stack.temporal!.resume!();
      ctx.log('Temporal back');
    },
  };
}

/** PostgreSQL stopped (fast shutdown: open transactions roll back) and started on the same data and port. */
export function postgresRestart(seed: number): FaultHooks {
  const r = rng(seed * 15485863 + 5);
  const target = ACTIVITIES[1 + Math.floor(r() * (ACTIVITIES.length - 1))];
  const night = 1 + Math.floor(r() * (NIGHTS.length - 1));
  return {
    async duringNight(ctx, n, handle) {
      if (n !== night) return;
      if (!(await whenActivity(ctx.client, handle, target))) return;
      await sleep(Math.floor(r() * 60));
      await ctx.stack.postgres!.halt();
      ctx.log(`PostgreSQL stopped at ${target} in night ${night}`);
      await sleep(1500 + Math.floor(r() * 3000));
      await ctx.stack.postgres!.resume();
      ctx.log('PostgreSQL back');
    },
  };
}

/**
 * pg_terminate_backend of the worker's connections inside a transaction (xact_start set), as soon
 * as one is seen after the seed's activity is scheduled: the transaction rolls back, the activity retries.
 */
export function connectionDrop(seed: number, record: (what: string) => void, nights = NIGHTS.length): FaultHooks {
  const r = rng(seed * 32452843 + 7);
  const target = (
    ['pullClaims', 'attachClaims', 'evaluateOutcomes', 'reverseCharges', 'postPeriodLines', 'postCharges'] as const
  )[seed % 6];
  const night = 1 + Math.floor(r() * (nights - 1));
  return {
    async duringNight(ctx, n, handle) {
      if (n !== night) return;
      if (!(await whenActivity(ctx.client, handle, target))) return;
      const admin = new pg.Client({ connectionString: ctx.stack.adminUrl });
      await admin.connect();
      try {
        const db = `f_${ctx.name.replace(/-/g, '_')}`;
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline) {
          const { rows } = await admin.query<{ pid: number; query: string }>(
            `select pid, left(query, 60) as query from pg_stat_activity where datname = $1 and xact_start is not null and pid <> pg_backend_pid()`,
            [db],
          );
          if (rows.length) {
            await admin.query(
              'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
              [db],
            );
            record(`${target}: ${rows[0].query.replace(/\s+/g, ' ')}`);
            ctx.log(
              `terminated ${rows.length} backend(s) mid-transaction at ${target} in night ${night}: ${rows[0].query.replace(/\s+/g, ' ')}`,
            );
            return;
          }
        }
        record(`${target}: no transaction seen`);
      } finally {
        await admin.end();
      }
    },
  };
}

/** The claims source misbehaving: 500s, a hang past the client's timeout, truncated JSON, a page served twice. */
export function httpFaults(seed: number): FaultHooks {
  const r = rng(seed * 49979687 + 11);
  const kinds = ['status', 'truncate', 'replay', 'status', 'replay'] as const;
  return {
    prepare(ctx: RunContext) {
      const queue: Array<'ok' | 'status' | 'hang' | 'truncate' | 'replay'> = [];
      // Faults spread over the first nights' requests, one hang per run (it costs the client's timeout).
      for (let i = 0; i < 12; i++) {
        queue.push(...Array.from({ length: Math.floor(r() * 3) }, () => 'ok' as const));
        queue.push(kinds[Math.floor(r() * kinds.length)]);
      }
      queue.splice(4 + Math.floor(r() * 8), 0, 'hang');
      ctx.claims.inject(...queue);
      return Promise.resolve();
    },
  };
}

/**
 * A dispute resolved while the worker is down: the update waits for a worker, the dispute stays
 * open meanwhile, and the effect lands once when the worker is back.
 */
export function disputeWhileDown(seed: number, check: (ok: boolean, note: string) => void): FaultHooks {
  const r = rng(seed * 86028121 + 13);
  return {
    async resolveDispute(ctx, resolve) {
      await ctx.worker.kill();
      const pending = resolve();
      pending.catch(() => undefined);
      await sleep(2000 + Math.floor(r() * 3000));
      const { rows } = await ctx.pool.query<{ n: number }>(
        `select count(*)::int as n from disputes where tenant_id = $1 and status <> 'open'`,
        [ctx.tenant],
      );
      const before = rows[0].n;
      await ctx.worker.start();
      await pending;
      const { rows: ev } = await ctx.pool.query<{ n: number }>(
        `select count(*)::int as n from dispute_events e join disputes d using (dispute_id) where d.tenant_id = $1 and e.kind = 'resolved'`,
        [ctx.tenant],
      );
      const { rows: after } = await ctx.pool.query<{ n: number }>(
        `select count(*)::int as n from disputes where tenant_id = $1 and status <> 'open'`,
        [ctx.tenant],
      );
      const ok = after[0].n === before + 1 && ev[0].n === after[0].n;
      check(ok, `resolved while down: before ${before}, after ${after[0].n}, resolution events ${ev[0].n}`);
      ctx.log(
        `dispute resolved with the worker down: ${ok ? 'ok' : 'WRONG'} (${before} → ${after[0].n} resolved, ${ev[0].n} resolution events)`,
      );
    },
  };
}

/** What a sink fault did to its run: how many requests it struck (0 means it never did). */
export interface SinkFaultRecord {
  seed: number;
  night: number;
  struck: number;
  note: string;
}

/** Counts the emulator's requests answered with `mode` from now on; returns the count and a stop. */
function countStrikes(ctx: RunContext, mode: string): { count: () => number; stop: () => void } {
  let n = 0;
  const listen = (line: string) => {
    if (line.includes(`(fault ${mode})`) && !line.includes('answer held')) n++;
  };
  ctx.sink.listeners.add(listen);
  return { count: () => n, stop: () => ctx.sink.listeners.delete(listen) };
}

/**
 * A fault of the Stripe emulator for one seeded night: set when the night starts (before its
 * delivery step), left to run out (`times`) or cleared when the next night starts.
 */
function sinkFaultForNight(
  seed: number,
  salt: number,
  record: (r: SinkFaultRecord) => void,
  make: (r: () => number) => { fault: Fault; what: string; wholeNight?: boolean },
  runNights = NIGHTS.length,
): FaultHooks {
  const r = rng(seed * 7919 + salt);
  const { fault, what, wholeNight } = make(r);
  // A fault that lasts the whole night needs a next night to be over by.
  const nights = runNights - (wholeNight ? 1 : 0);
  // Consecutive seeds take consecutive nights, so that a few seeds cover every night.
  const night = (seed + salt) % nights;
  let strikes: ReturnType<typeof countStrikes> | null = null;
  return {
    async duringNight(ctx, n) {
      if (n === night) {
        strikes = countStrikes(ctx, fault.mode);
        ctx.sink.emulator.setFault(fault);
        ctx.log(`sink fault: ${what} from the start of night ${night}`);
      } else if (n === night + 1 && wholeNight) {
        ctx.sink.emulator.setFault({ mode: 'none' });
        ctx.log(`sink back at the start of night ${n}`);
      }
      return Promise.resolve();
    },
    // Counted over the rest of the run: a stretch the night did not use up strikes the delivery loop.
    finish(ctx) {
      const struck = strikes?.count() ?? 0;
      strikes?.stop();
      record({ seed, night, struck, note: `${what} from night ${night}: ${struck} request(s) struck` });
      ctx.log(`sink fault: ${what} from night ${night}, ${struck} request(s) struck`);
    },
  };
}

/** The sink answers 500 to a seeded stretch of requests during a night. */
export function sink500(seed: number, record: (r: SinkFaultRecord) => void): FaultHooks {
  return sinkFaultForNight(seed, 17, record, (r) => {
    const times = 2 + Math.floor(r() * 7);
    return { fault: { mode: 'error500', times }, what: `500 for ${times} requests` };
  });
}

/** The sink takes a request and drops the connection before answering: the resend must be recognised. */
export function sinkAmbiguous(seed: number, record: (r: SinkFaultRecord) => void, nights = NIGHTS.length): FaultHooks {
  return sinkFaultForNight(
    seed,
    19,
    record,
    (r) => {
      const times = 1 + Math.floor(r() * 3);
      return { fault: { mode: 'accept_then_drop', times }, what: `accept then drop for ${times} requests` };
    },
    nights,
  );
}

/** A 429 storm: every request refused with Retry-After, short (waited out in the pass) or long (the loop's). */
export function sink429(seed: number, record: (r: SinkFaultRecord) => void): FaultHooks {
  return sinkFaultForNight(seed, 23, record, (r) => {
    const times = 6 + Math.floor(r() * 15);
    const retryAfterSeconds = [1, 2, 3, 20][Math.floor(r() * 4)];
    return {
      fault: { mode: 'rate_limit', times, retryAfterSeconds },
      what: `429 with Retry-After ${retryAfterSeconds} s for ${times} requests`,
    };
  });
}

/** The sink down (connections dropped unanswered) for a whole night, back when the next one starts. */
export function sinkDown(seed: number, record: (r: SinkFaultRecord) => void): FaultHooks {
  return sinkFaultForNight(seed, 29, record, () => ({
    fault: { mode: 'down' },
    what: 'down for the night',
    wholeNight: true,
  }));
}

/**
 * SIGKILL of the worker between send and acknowledgement: from the start of a seeded night the
 * emulator keeps the answer to the next delivery request back ('hold': the invoice item is made,
 * the answer waits 15 s), and the worker is killed while it waits, a seeded 0–150 ms after the
 * emulator holds it. The worker restarts after 0.3–2.3 s. The dead attempt's batches stay leased
 * until their lease ends, then go again with the same Idempotency-Key, which Stripe replays. A
 * night with nothing to deliver leaves the hold armed for the next request, whichever night it is.
 */
export function sinkKill(seed: number, record: (r: SinkFaultRecord) => void): FaultHooks {
  const r = rng(seed * 7919 + 31);
  // Consecutive seeds take consecutive nights: ten seeds hold a request in each night twice.
  const night = seed % NIGHTS.length;
  const delay = Math.floor(r() * 150);
  const downMs = 300 + Math.floor(r() * 2000);
  let killing: Promise<void> | null = null;
  let onKill: () => void = () => undefined;
  const killed = new Promise<void>((resolve) => (onKill = resolve));
  let current: { n: number; handle: WorkflowHandle } | null = null;
  let listen: ((line: string) => void) | null = null;
  const kill = async (ctx: RunContext, line: string) => {
    await sleep(delay);
    await ctx.worker.kill();
    const at = current;
    const pendingAtKill = at ? await pendingActivities(ctx.client, at.handle).catch(() => []) : [];
    const what = `night ${at?.n ?? '?'}: ${line}; SIGKILL +${delay} ms; pending ${pendingAtKill.join(',') || '(none)'}`;
    record({ seed, night, struck: 1, note: what });
    ctx.log(`sink hold: ${what}`);
    await sleep(downMs);
    await ctx.worker.start();
  };
  return {
    async duringNight(ctx, n, handle) {
      current = { n, handle };
      if (n === night) {
        listen = (line) => {
          if (killing || !line.includes('answer held')) return;
          killing = kill(ctx, line.replace('[stripe-emulator] ', '')).finally(onKill);
        };
        ctx.sink.listeners.add(listen);
        ctx.sink.emulator.setFault({ mode: 'hold', times: 1, holdMs: 15_000 });
        ctx.log(`sink fault: the next delivery answer is held from the start of night ${night}`);
      }
      if (n < night) return;
      // Until this night ends or the kill is over; a kill that started meanwhile is waited for.
      await Promise.race([killed, handle.result().catch(() => undefined)]);
      if (killing) await killing;
    },
    async finish(ctx) {
      if (killing) await killing;
      if (listen) ctx.sink.listeners.delete(listen);
      if (!killing) record({ seed, night, struck: 0, note: `no delivery request was held from night ${night} on` });
    },
  };
}

/** What a fault of the pulled sources did to its run (struck 0: it never struck, and the run fails). */
export interface PullFaultRecord {
  seed: number;
  night: number;
  struck: number;
  note: string;
}

const EXPORT_LINE = 'GET /api/v2/incremental/tickets/cursor.json';

/**
 * SIGKILL of the worker in the middle of the pulled tenant's Zendesk pull, in a seeded night (1–3:
 * nights of several pages). Odd seeds: the emulator holds its answer to the night's first export
 * request 15 s ('hold') and the worker dies 0–150 ms after the emulator holds it, the request in
 * flight. Even seeds: the worker dies 0–60 ms after the emulator answered the night's first page,
 * while the page is imported or the next one asked for. The worker restarts after 0.3–2.3 s; the
 * pull resumes from the cursor saved with the last page imported.
 */
export function pullKill(seed: number, record: (r: PullFaultRecord) => void): FaultHooks {
  const r = rng(seed * 7919 + 37);
  const night = 1 + (seed % 3);
  const held = seed % 2 === 1;
  const delay = Math.floor(r() * (held ? 150 : 25));
  const downMs = 300 + Math.floor(r() * 2000);
  let killing: Promise<void> | null = null;
  let listen: ((line: string) => void) | null = null;
  const kill = async (ctx: RunContext, line: string) => {
    await sleep(delay);
    await ctx.worker.kill();
    const pendingAtKill = ctx.pulled.handle
      ? await pendingActivities(ctx.client, ctx.pulled.handle).catch(() => [])
      : [];
    const pages = await ctx.pool
      .query<{ pages: number }>('select pages::int from source_cursors where tenant_id = $1', [ctx.pulled.tenant])
      .then((q) => q.rows[0]?.pages ?? 0)
      .catch(() => -1);
    const what = `night ${night}: ${line.replace('zendesk: ', '')}; SIGKILL +${delay} ms; pending ${pendingAtKill.join(',') || '(none: the pull had ended)'}; ${pages} pages committed at the kill`;
    // A kill after the night's pull ended is no kill mid-pull: the run fails, saying so.
    record({ seed, night, struck: pendingAtKill.some((p) => p.startsWith('pullRecords')) ? 1 : 0, note: what });
    ctx.log(`pull kill: ${what}`);
    await sleep(downMs);
    await ctx.worker.start();
  };
  return {
    beforeNight(ctx, n) {
      if (n !== night) return Promise.resolve();
      listen = (line) => {
        if (killing || !line.includes(EXPORT_LINE)) return;
        if (held ? line.includes('answer held') : / -> 200$/.test(line)) killing = kill(ctx, line);
      };
      ctx.pulled.listeners.add(listen);
      if (held) ctx.pulled.zendesk.setFault({ mode: 'hold', times: 1, holdMs: 15_000 });
      ctx.log(
        `pull fault: SIGKILL ${held ? 'while the first export request is held' : 'after the first page'} in night ${night}`,
      );
      return Promise.resolve();
    },
    async duringPulledNight(ctx, n, handle) {
      if (n !== night) return;
      // The night's pull has not asked yet; the kill comes while the night runs.
      let over = false;
      await Promise.race([
        (async () => {
          while (!killing && !over) await sleep(20);
          await killing;
        })(),
        handle.result().catch(() => undefined),
      ]);
      over = true;
      if (killing) await killing;
    },
    async finish(ctx) {
      if (killing) await killing;
      if (listen) ctx.pulled.listeners.delete(listen);
      if (!killing) record({ seed, night, struck: 0, note: `no export request was struck in night ${night}` });
    },
  };
}

/**
 * A 429 storm on the Zendesk export from the start of a seeded night: 2–4 answers with a short
 * Retry-After (1 s, waited out inside the pull), then one with a long one (4–6 s, more than the
 * pull waits itself: the activity hands it to the workflow, which sleeps durably). The night
 * completes with the reference's ledger; the waits are counted in source_cursors.
 */
export function pull429(seed: number, record: (r: PullFaultRecord) => void): FaultHooks {
  const r = rng(seed * 7919 + 41);
  const night = seed % NIGHTS.length;
  const short = 2 + Math.floor(r() * 3);
  const long = 4 + Math.floor(r() * 3);
  let struck = 0;
  let listen: ((line: string) => void) | null = null;
  let nightHandle: WorkflowHandle | null = null;
  return {
    duringPulledNight(_ctx, n, handle) {
      if (n === night) nightHandle = handle;
      return Promise.resolve();
    },
    beforeNight(ctx, n) {
      if (n !== night) return Promise.resolve();
      listen = (line) => {
        if (!line.includes(EXPORT_LINE) || !line.includes('-> 429 (fault)')) return;
        struck++;
        // The short ones spent: one long Retry-After follows.
        if (struck === short) ctx.pulled.zendesk.setFault({ mode: 'rate_limit', times: 1, retryAfterSeconds: long });
      };
      ctx.pulled.listeners.add(listen);
      ctx.pulled.zendesk.setFault({ mode: 'rate_limit', times: short, retryAfterSeconds: 1 });
      ctx.log(
        `pull fault: ${short}× 429 Retry-After 1 s, then 1× Retry-After ${long} s from the start of night ${night}`,
      );
      return Promise.resolve();
    },
    async finish(ctx) {
      if (listen) ctx.pulled.listeners.delete(listen);
      const { rows } = await ctx.pool.query<{ waits: number; ms: string }>(
        'select rate_limit_waits as waits, rate_limit_wait_ms as ms from source_cursors where tenant_id = $1 and source = $2',
        [ctx.pulled.tenant, 'helpdesk'],
      );
      // The long Retry-After must have gone back to the workflow: a durable timer in the night's history.
      const history = nightHandle ? await nightHandle.fetchHistory().catch(() => null) : null;
      const timers = (history?.events ?? [])
        .map((e) => e.timerStartedEventAttributes?.startToFireTimeout)
        .filter((t) => !!t)
        .map((t) => Number(t?.seconds ?? 0) + Number(t?.nanos ?? 0) / 1e9);
      const note = `night ${night}: ${struck} 429s (${short}× Retry-After 1 s, 1× ${long} s); source_cursors: ${rows[0]?.waits ?? 0} waits, ${Number(rows[0]?.ms ?? 0)} ms; durable sleeps in the night's workflow: ${timers.map((t) => `${t} s`).join(', ') || 'none'}`;
      record({ seed, night, struck: struck === short + 1 && timers.length > 0 ? struck : 0, note });
      ctx.log(`pull fault: ${note}`);
    },
  };
}

/**
 * SIGKILL while the worker reads the AI side's claims: from the start of a seeded night the claims
 * table is locked (ACCESS EXCLUSIVE, in a transaction of ours), so the night's read-only page
 * query waits on it; the worker is killed once PostgreSQL shows that query waiting, the lock is
 * released, and the worker restarts 0.3–2.3 s later. The pull resumes from the saved keyset.
 */
export function pgClaimsKill(seed: number, record: (r: PullFaultRecord) => void): FaultHooks {
  const r = rng(seed * 7919 + 43);
  const night = seed % NIGHTS.length;
  const downMs = 300 + Math.floor(r() * 2000);
  let locker: pg.Client | null = null;
  return {
    async beforeNight(ctx, n) {
      if (n !== night) return;
      locker = new pg.Client({ connectionString: ctx.pulled.aiUrl });
      await locker.connect();
      await locker.query('begin');
      await locker.query('lock table outcome_claims in access exclusive mode');
      ctx.log(`pull fault: the AI side's claims table locked from the start of night ${night}`);
    },
    async duringPulledNight(ctx, n) {
      if (n !== night || !locker) return;
      const admin = new pg.Client({ connectionString: ctx.stack.adminUrl });
      await admin.connect();
      let struck = 0;
      let note = `night ${night}: no read of the AI side's claims was seen waiting`;
      try {
        const deadline = Date.now() + 120_000;
        while (Date.now() < deadline) {
          const { rows } = await admin.query<{ query: string }>(
            `select left(query, 80) as query from pg_stat_activity
              where datname = $1 and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
            [ctx.pulled.aiDatabase],
          );
          if (rows.length) {
            await ctx.worker.kill();
            struck = 1;
            note = `night ${night}: SIGKILL while reading the claims (${rows[0].query.replace(/\s+/g, ' ')})`;
            break;
          }
          await sleep(50);
        }
      } finally {
        await admin.end();
        await locker.query('rollback').catch(() => undefined);
        await locker.end().catch(() => undefined);
        locker = null;
      }
      record({ seed, night, struck, note });
      ctx.log(`pull fault: ${note}`);
      if (struck) {
        await sleep(downMs);
        await ctx.worker.start();
      }
    },
  };
}
