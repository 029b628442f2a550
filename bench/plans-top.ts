import { readFile } from 'node:fs/promises';

/**
 * `npx tsx bench/plans-top.ts DIR/plans.log [N]`: the slow statements a `--profile` bench logged
 * (auto_explain), grouped by statement text, by total time; each with its slowest plan in full.
 * The server writes a message's continuation lines with a leading tab, so a line without one
 * starts the next message.
 */
interface Group {
  query: string;
  count: number;
  totalMs: number;
  slowestMs: number;
  slowestPlan: string;
}

function parse(text: string): Array<{ ms: number; query: string; plan: string }> {
  const entries: Array<{ ms: number; query: string; plan: string }> = [];
  let current: { ms: number; lines: string[] } | null = null;
  const flush = () => {
    if (!current) return;
    const lines = current.lines;
    const q = lines.findIndex((l) => l.startsWith('Query Text:'));
    const planStart = lines.findIndex((l, i) => i > q && /\((cost|actual)[= ]/.test(l));
    if (q >= 0 && planStart > q) {
      const query = [lines[q].slice('Query Text:'.length), ...lines.slice(q + 1, planStart)]
        .join(' ')
        .replace(/\s+/g, ' ')
        .trim();
      entries.push({ ms: current.ms, query, plan: lines.slice(planStart).join('\n') });
    }
    current = null;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('\t')) {
      current?.lines.push(line.slice(1));
      continue;
    }
    flush();
    const m = /LOG:\s+duration: ([\d.]+) ms\s+plan:/.exec(line);
    if (m) current = { ms: Number(m[1]), lines: [] };
  }
  flush();
  return entries;
}

async function main(): Promise<number> {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: npx tsx bench/plans-top.ts DIR/plans.log [N]\n');
    return 2;
  }
  const groups = new Map<string, Group>();
  for (const e of parse(await readFile(file, 'utf8'))) {
    const key = e.query.slice(0, 400);
    const g = groups.get(key) ?? { query: e.query, count: 0, totalMs: 0, slowestMs: 0, slowestPlan: '' };
    g.count++;
    g.totalMs += e.ms;
    if (e.ms > g.slowestMs) {
      g.slowestMs = e.ms;
      g.slowestPlan = e.plan;
    }
    groups.set(key, g);
  }
  const top = [...groups.values()].sort((a, b) => b.totalMs - a.totalMs).slice(0, Number(n ?? 10));
  for (const g of top) {
    console.log(
      `== ${(g.totalMs / 1000).toFixed(2)} s in ${g.count} slow calls (slowest ${g.slowestMs.toFixed(0)} ms): ${g.query.slice(0, 300)}`,
    );
    console.log(g.slowestPlan);
    console.log('');
  }
  if (top.length === 0) console.log(`no plans in ${file}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`plans-top: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
