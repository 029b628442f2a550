import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(ROOT, 'bin', 'recon.mjs');

export interface ReconResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to its end and keeps what it printed; `env` adds to (or blanks) the test's own. */
export function spawnResult(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = ROOT,
): Promise<ReconResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: Date.now() - started }));
  });
}

/** `recon ARGS` as a person runs it: the real binary in its own process. */
export function recon(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<ReconResult> {
  return spawnResult(process.execPath, [BIN, ...args], env, cwd);
}
