#!/usr/bin/env node
// `npm run test:faults`: the fault-injection suite on the real stack (test/faults/main.ts).
// Like the workers and the CLI, it runs in UTC.
process.env.TZ = 'UTC';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../test/faults/main.ts');
// Exit explicitly: the Temporal runtime's native threads would otherwise keep the process alive.
process.exit(await main(process.argv.slice(2)));
