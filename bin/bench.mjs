#!/usr/bin/env node
// `npm run bench -- [--claims N] [--existing M] [--workers K] [--sink stripe [--sink-mode invoice_items]]`: the benchmark of issue 5 (bench/run.ts).
// `npm run bench -- --tenants N [--claims M]`: the fleet benchmark of issue 15 (bench/fleet.ts).
// Decisions never depend on the process timezone; like the workers and the CLI, it runs in UTC.
process.env.TZ = 'UTC';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../bench/run.ts');
// Exit explicitly: the Temporal runtime's native threads would otherwise keep the process alive.
process.exit(await main(process.argv.slice(2)));
