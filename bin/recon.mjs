#!/usr/bin/env node
// Decisions never depend on the process timezone; workers and the CLI run in UTC on purpose.
process.env.TZ = 'UTC';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
