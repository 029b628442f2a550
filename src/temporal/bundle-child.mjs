// `node bundle-child.mjs OUT`: bundles the workflows into OUT, in its own process so that webpack's
// memory is given back when it exits (see cachedWorkflowBundle in worker.ts).
import { rename, writeFile } from 'node:fs/promises';
import { register } from 'tsx/esm/api';

register();
const out = process.argv[2];
const { bundleWorkflows } = await import('./worker.ts');
const bundle = await bundleWorkflows();
// Written aside and renamed: a worker starting meanwhile never reads half a bundle.
const tmp = `${out}.${process.pid}.tmp`;
await writeFile(tmp, bundle.code);
await rename(tmp, out);
process.exit(0);
