#!/usr/bin/env node
// Decisions never depend on the process timezone; workers and the CLI run in UTC on purpose.
process.env.TZ = 'UTC';
import v8 from 'node:v8';
import { compiledRecon } from '../scripts/build.mjs';

const isWorker = process.argv.slice(2).find((a) => !a.startsWith('-')) === 'worker';

if (isWorker) {
  // A worker holds little live data (bounded chunks, a handful of cached workflows), but V8's
  // defaults size the heap for throughput: old space filled with ~150 MB of garbage between full
  // collections during evaluate and post, and every isolate (this thread, the workflow thread, and
  // tsx's loader thread while the worker ran from source) reserved a 2 x 16 MB young generation.
  // Growing the heap 25% over the live set (instead of up to 4x) and 2 MB semi-spaces took the
  // worker's peak RSS at 100k claims from ~406 to ~272 MB (`npm run bench -- --claims 100000`)
  // with no measurable cost in run time.
  // Set here, not on a command line, so that every way of starting the worker gets them: the growth
  // factor is read at each collection; the semi-space size when an isolate is created, so it
  // applies to the workflow thread (Worker.create), while this thread keeps its default young
  // generation. Neither is a cap: a chunk that needs more memory still gets it. Flags given on the
  // command line or in NODE_OPTIONS win.
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].join(' ');
  if (!/--heap-growing-percent/.test(given)) v8.setFlagsFromString('--heap-growing-percent=25');
  if (!/--max-semi-space-size/.test(given)) v8.setFlagsFromString('--max-semi-space-size=2');
}
// The compiled build (scripts/build.mjs), rebuilt first if src/ changed since: `recon --help`
// starts in ~0.3 s instead of ~0.7 s through tsx. Stack traces name dist/ lines unless source maps
// are on: RECON_DEBUG turns them on (or NODE_OPTIONS=--enable-source-maps), not by default, as
// they cost start-up time and an idle worker ~20-45 MB of RSS (151-157 against 173-202 MB).
if (process.env.RECON_DEBUG) process.setSourceMapsEnabled(true);
let entry;
try {
  entry = await compiledRecon();
} catch (err) {
  // esbuild has printed each error with its file and line.
  if (!err?.errors) console.error(err);
  process.stderr.write('recon: could not compile src/ (see above); fix it, then run `npm run build` or recon again\n');
  process.exit(1);
}
const { main } = await import(entry);
await main(process.argv);
