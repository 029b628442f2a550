// `node bundle-child.mjs OUT WORKFLOWS`: bundles the workflows whose entry is WORKFLOWS into OUT, in
// its own process so that webpack's memory is given back when it exits (see cachedWorkflowBundle in
// worker.ts). Plain JavaScript that imports only the SDK, so that it runs the same beside the
// TypeScript sources and beside the compiled `recon` (dist/), without tsx's loader.
import { rename, writeFile } from 'node:fs/promises';
import { bundleWorkflowCode } from '@temporalio/worker';

const [out, workflowsPath] = process.argv.slice(2);
const bundle = await bundleWorkflowCode({ workflowsPath });
// Written aside and renamed: a worker starting meanwhile never reads half a bundle.
const tmp = `${out}.${process.pid}.tmp`;
await writeFile(tmp, bundle.code);
await rename(tmp, out);
process.exit(0);
