/**
 * A small in-process metrics registry that writes the Prometheus text exposition format 0.0.4.
 * Counters and histograms are all the worker needs; a dependency for them would be larger than
 * this file. Label sets stay small by construction: no tenant id is ever a label (a fleet has
 * thousands of tenants, and every label value is a series Prometheus keeps).
 */

type Labels = Record<string, string>;

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Number.isNaN(n)) return 'NaN';
  return String(n);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

abstract class Metric {
  protected readonly series = new Map<string, { labels: Labels; value: unknown }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    for (const l of labelNames) if (!LABEL.test(l) || l === 'le') throw new Error(`invalid label name ${l}`);
  }

  protected key(labels: Labels): string {
    const missing = this.labelNames.filter((l) => labels[l] === undefined);
    const extra = Object.keys(labels).filter((l) => !this.labelNames.includes(l));
    if (missing.length || extra.length)
      throw new Error(`${this.name}: labels must be exactly ${this.labelNames.join(', ') || '(none)'}`);
    return this.labelNames.map((l) => labels[l]).join('\u0000');
  }

  protected static labelText(labels: Labels, extra?: [string, string]): string {
    const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
    if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
    return parts.length ? `{${parts.join(',')}}` : '';
  }

  abstract type: string;
  abstract lines(): string[];

  expose(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.lines()].join(
      '\n',
    );
  }
}

export class Counter extends Metric {
  readonly type = 'counter';

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${by})`);
    if (by === 0) return;
    const key = this.key(labels);
    const s = this.series.get(key);
    if (s) s.value = (s.value as number) + by;
    else this.series.set(key, { labels: this.ordered(labels), value: by });
  }

  get(labels: Labels = {}): number {
    return (this.series.get(this.key(labels))?.value as number | undefined) ?? 0;
  }

  private ordered(labels: Labels): Labels {
    return Object.fromEntries(this.labelNames.map((l) => [l, labels[l]]));
  }

  lines(): string[] {
    return [...this.series.values()].map(
      (s) => `${this.name}${Metric.labelText(s.labels)} ${formatValue(s.value as number)}`,
    );
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    const sorted = [...buckets].filter((b) => b !== Infinity).sort((a, b) => a - b);
    if (!sorted.length || new Set(sorted).size !== sorted.length) throw new Error(`${name}: buckets must be distinct`);
    this.buckets = sorted;
  }

  observe(labels: Labels, value: number): void {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = {
        labels: Object.fromEntries(this.labelNames.map((l) => [l, labels[l]])),
        value: { counts: this.buckets.map(() => 0), sum: 0, count: 0 } satisfies HistogramState,
      };
      this.series.set(key, s);
    }
    const h = s.value as HistogramState;
    // Stored per bucket, made cumulative when written.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) h.counts[i]++;
    h.sum += value;
    h.count++;
  }

  lines(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      const h = s.value as HistogramState;
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += h.counts[i];
        out.push(`${this.name}_bucket${Metric.labelText(s.labels, ['le', formatValue(b)])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${Metric.labelText(s.labels, ['le', '+Inf'])} ${h.count}`);
      out.push(`${this.name}_sum${Metric.labelText(s.labels)} ${formatValue(h.sum)}`);
      out.push(`${this.name}_count${Metric.labelText(s.labels)} ${h.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  private add<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** Every metric in text format 0.0.4, ending with a newline. */
  expose(): string {
    return [...this.metrics.values()].map((m) => m.expose() + '\n').join('');
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
