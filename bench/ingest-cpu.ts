import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The embedded server's postmaster, from its data directory. */
export function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/**
 * CPU seconds used so far by the embedded server: the postmaster, the backends it has reaped
 * (cutime/cstime) and the live ones. Wall time on a shared 2-core machine is noisy; CPU is not.
 */
export function postgresCpuSeconds(postmasterPid: number): number {
  const tick = 100; // USER_HZ on Linux
  const fields = (pid: number) =>
    readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
  const own = fields(postmasterPid);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const child of readFileSync(`/proc/${postmasterPid}/task/${postmasterPid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)) {
    try {
      const f = fields(Number(child));
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile: counted in the postmaster's cutime once reaped
    }
  }
  return ticks / tick;
}
