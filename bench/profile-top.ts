/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by where the code
 * lives (our sources, each npm package, Node internals, GC, idle), so a profile of the worker
 * can be quoted in a few lines.
 *
 *   npx tsx bench/profile-top.ts FILE.cpuprofile... [--top 25]
 *
 * A worker writes one file per thread: the main thread (activities) and the workflow threads.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';

const Profile = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
    }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});

/** Where a function's code lives: a package, our own source tree, or the runtime. */
export function placeOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/(src|activities|workflows|bench)\//.exec(url);
  return own ? `${own[1]}/` : url;
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
  });
  if (positionals.length === 0) throw new Error('usage: profile-top FILE.cpuprofile... [--top N]');
  for (const file of positionals) summarise(file, Number(values.top));
}

function summarise(file: string, top: number): void {
  const profile = Profile.parse(JSON.parse(readFileSync(file, 'utf8')));
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfUs = new Map<string, number>();
  const placeUs = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!;
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const fn = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|activities|workflows|bench)\//, '$1/')}:${f.lineNumber + 1}`;
    selfUs.set(fn, (selfUs.get(fn) ?? 0) + dt);
    const place = placeOf(f.url, f.functionName);
    placeUs.set(place, (placeUs.get(place) ?? 0) + dt);
  });
  const busy = total - (placeUs.get('(idle)') ?? 0);
  const pct = (us: number, of: number) => `${((100 * us) / of).toFixed(1)}%`.padStart(6);
  const s = (us: number) => (us / 1e6).toFixed(2).padStart(8);
  console.log(`\nprofile ${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s not idle`);
  console.log('\nby place (self time, % of not idle)');
  for (const [place, us] of [...placeUs]
    .filter(([p]) => p !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15))
    console.log(`${s(us)} s ${pct(us, busy)}  ${place}`);
  console.log(`\ntop ${top} functions (self time)`);
  for (const [fn, us] of [...selfUs]
    .filter(([fn]) => !fn.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    console.log(`${s(us)} s ${pct(us, busy)}  ${fn}`);
}

main(process.argv.slice(2));
