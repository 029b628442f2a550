import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from './helpers';
import { formatMinorUnits, priceToMinorUnits } from '../../src/domain/money';
import { multiplyDecimal } from '../../src/domain/decimal';
import { alertsCrossed, alertsToRecord } from '../../src/domain/pricing/alerts';
import { projectPeriod } from '../../src/domain/pricing/forecast';
import { type PeriodUsage, type PricedLine, type Pricing, PricingSchema } from '../../src/domain/pricing/schema';
import { baseFeeMinor, priceNextOutcomes } from '../../src/domain/pricing/tiers';

const EMPTY: PeriodUsage = { count: 0, usageMinor: 0, capped: 0 };

const hybridJson = {
  baseFee: '500.00',
  included: 1000,
  tiers: [{ upTo: 1000, unitPrice: '0.99' }, { upTo: 10000, unitPrice: '0.79' }, { unitPrice: '0.59' }],
};
const hybrid = PricingSchema.parse(hybridJson);

/** The issues a refused pricing block gives, as "path: message". */
function issues(input: unknown): string[] {
  const parsed = PricingSchema.safeParse(input);
  if (parsed.success) throw new Error(`expected ${JSON.stringify(input)} to be refused`);
  return parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const at = (lines: PricedLine[], position: number) => {
  const line = lines.find((l) => l.position === position);
  if (!line) throw new Error(`no line at position ${position}`);
  return line;
};

/** Prices `sizes` consecutive chunks from `start`, threading the usage through. */
function inChunks(
  pricing: Pricing,
  currency: string,
  sizes: number[],
  multiplier?: string,
  start: PeriodUsage = EMPTY,
) {
  let usage = start;
  const lines: PricedLine[] = [];
  const afters: PeriodUsage[] = [];
  for (const n of sizes) {
    const r = priceNextOutcomes(pricing, currency, usage, n, multiplier);
    lines.push(...r.lines);
    afters.push(r.after);
    usage = r.after;
  }
  return { lines, after: usage, afters };
}

describe('PricingSchema', () => {
  it('accepts the full example and keeps the cap as exactly one of amount or count', () => {
    const p = PricingSchema.parse({
      ...hybridJson,
      cap: { amount: '5000.00' },
      alerts: [0.5, 0.8, 1.0],
      indexSeries: 'gpu-cost',
    });
    expect(p.cap).toEqual({ amount: '5000.00' });
    expect(PricingSchema.parse({ tiers: [{ unitPrice: '1' }], cap: { count: 8000 } }).cap).toEqual({ count: 8000 });
    expect(PricingSchema.parse({ tiers: [{ unitPrice: '0.25' }] })).toEqual({ tiers: [{ unitPrice: '0.25' }] });
  });

  it('needs at least one tier', () => {
    expect(issues({ tiers: [] })).toEqual([expect.stringMatching(/^tiers: at least one tier is required/)]);
    expect(issues({})).toEqual([expect.stringMatching(/^tiers: /)]);
  });

  it('needs upTo on every tier but the last, and none on the last', () => {
    expect(issues({ tiers: [{ unitPrice: '1' }, { unitPrice: '0.5' }] })).toEqual([
      expect.stringMatching(/^tiers\.0\.upTo: only the last tier may omit upTo/),
    ]);
    expect(issues({ tiers: [{ upTo: 10, unitPrice: '1' }] })).toEqual([
      expect.stringMatching(/^tiers\.0\.upTo: the last tier must omit upTo/),
    ]);
  });

  it('needs strictly increasing positive whole upTo values', () => {
    expect(
      issues({ tiers: [{ upTo: 10, unitPrice: '1' }, { upTo: 10, unitPrice: '0.5' }, { unitPrice: '0.4' }] }),
    ).toEqual([expect.stringMatching(/^tiers\.1\.upTo: upTo must be strictly increasing/)]);
    expect(
      issues({ tiers: [{ upTo: 20, unitPrice: '1' }, { upTo: 5, unitPrice: '0.5' }, { unitPrice: '0.4' }] }),
    ).toEqual([
      expect.stringMatching(
        /^tiers\.1\.upTo: upTo must be strictly increasing \(5 does not exceed the previous tier's 20\)/,
      ),
    ]);
    expect(issues({ tiers: [{ upTo: 0, unitPrice: '1' }, { unitPrice: '0.5' }] })).toEqual([
      'tiers.0.upTo: upTo must be a positive whole number',
    ]);
    expect(issues({ tiers: [{ upTo: 1.5, unitPrice: '1' }, { unitPrice: '0.5' }] })).toEqual([
      'tiers.0.upTo: upTo must be a whole number',
    ]);
  });

  it('checks prices, included and base fee', () => {
    expect(issues({ tiers: [{ unitPrice: '-1' }] })).toEqual([
      expect.stringMatching(/^tiers\.0\.unitPrice: expected a non-negative decimal price/),
    ]);
    expect(issues({ tiers: [{ unitPrice: 0.99 }] })).toEqual([expect.stringMatching(/^tiers\.0\.unitPrice: /)]);
    expect(issues({ baseFee: '1,00', tiers: [{ unitPrice: '1' }] })).toEqual([
      expect.stringMatching(/^baseFee: expected a non-negative decimal price/),
    ]);
    expect(issues({ included: -1, tiers: [{ unitPrice: '1' }] })).toEqual(['included: included must not be negative']);
    expect(issues({ included: 2.5, tiers: [{ unitPrice: '1' }] })).toEqual([
      'included: included must be a whole number',
    ]);
  });

  it('needs exactly one of amount and count in a cap', () => {
    expect(issues({ tiers: [{ unitPrice: '1' }], cap: {} })).toEqual([
      'cap: a cap needs exactly one of "amount" or "count"',
    ]);
    expect(issues({ tiers: [{ unitPrice: '1' }], cap: { amount: '10', count: 3 } })).toEqual([
      'cap: a cap needs exactly one of "amount" or "count"',
    ]);
    expect(issues({ tiers: [{ unitPrice: '1' }], cap: { count: -1 } })).toEqual([
      'cap.count: cap.count must not be negative',
    ]);
    expect(issues({ tiers: [{ unitPrice: '1' }], cap: { amount: 'lots' } })).toEqual([
      expect.stringMatching(/^cap\.amount: expected a non-negative decimal/),
    ]);
  });

  it('needs alerts in (0, 1], ascending and unique', () => {
    expect(issues({ tiers: [{ unitPrice: '1' }], alerts: [0] })).toEqual([
      'alerts.0: an alert threshold must be above 0',
    ]);
    expect(issues({ tiers: [{ unitPrice: '1' }], alerts: [0.5, 1.2] })).toEqual([
      'alerts.1: an alert threshold must be at most 1 (100%)',
    ]);
    expect(issues({ tiers: [{ unitPrice: '1' }], alerts: [0.8, 0.5] })).toEqual([
      expect.stringMatching(/^alerts\.1: alert thresholds must be ascending and unique/),
    ]);
    expect(issues({ tiers: [{ unitPrice: '1' }], alerts: [0.5, 0.5] })).toEqual([
      expect.stringMatching(/^alerts\.1: alert thresholds must be ascending and unique/),
    ]);
  });

  it('refuses unknown keys and badly named index series', () => {
    expect(issues({ tiers: [{ unitPrice: '1' }], basefee: '1' })).toEqual([expect.stringMatching(/basefee/)]);
    expect(issues({ tiers: [{ unitPrice: '1' }], indexSeries: 'GPU cost' })).toEqual([
      expect.stringMatching(/^indexSeries: /),
    ]);
  });
});

describe('multiplyDecimal', () => {
  it.each([
    ['0.99', '1.10', '1.089'],
    ['0.99', '1', '0.99'],
    ['0.50', '2', '1'],
    ['007.100', '1', '7.1'],
    ['0.99', '0', '0'],
    ['-0.5', '0', '0'],
    ['-0.5', '0.5', '-0.25'],
    ['0.000000000001', '0.5', '0.0000000000005'],
    ['123456789012345678901234567890', '10', '1234567890123456789012345678900'],
  ])('%s × %s = %s', (a, b, product) => {
    expect(multiplyDecimal(a, b)).toBe(product);
    expect(multiplyDecimal(b, a)).toBe(product);
  });

  it.each(['', '.5', '1.', '1e3', '1,5', 'abc', ' 1'])('refuses %j', (bad) => {
    expect(codeOf(() => multiplyDecimal(bad, '1'))).toBe('invalid_decimal');
  });

  it('is the exact product, normalised (property)', () => {
    const decimal = fc
      .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.nat(14))
      .map(([negative, units, scale]) => {
        const digits = units.toString().padStart(scale + 1, '0');
        const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
        return { text: negative ? `-${text}` : text, units: negative ? -units : units, scale };
      });
    fc.assert(
      fc.property(decimal, decimal, (a, b) => {
        const product = multiplyDecimal(a.text, b.text);
        expect(product).toMatch(/^-?(0|[1-9]\d*)(\.\d*[1-9])?$/);
        expect(product).not.toBe('-0');
        // product as p / 10^k must equal (a.units × b.units) / 10^(a.scale + b.scale)
        const [, sign, whole, fraction = ''] = /^(-?)(\d+)(?:\.(\d+))?$/.exec(product)!;
        const p = BigInt(whole + fraction) * (sign ? -1n : 1n);
        expect(p * 10n ** BigInt(a.scale + b.scale)).toBe(a.units * b.units * 10n ** BigInt(fraction.length));
      }),
    );
  });
});

describe('priceNextOutcomes: concrete periods', () => {
  it('hybrid: 1000 included, then 0.99 for 1000, 0.79 up to 10000 overage, then 0.59', () => {
    const { lines, after } = priceNextOutcomes(hybrid, 'USD', EMPTY, 11001);
    expect(lines).toHaveLength(11001);
    expect(at(lines, 1)).toEqual({ position: 1, basis: 'included', tier: null, unitPrice: '0', amountMinor: 0 });
    expect(at(lines, 1000)).toEqual({ position: 1000, basis: 'included', tier: null, unitPrice: '0', amountMinor: 0 });
    expect(at(lines, 1001)).toEqual({ position: 1001, basis: 'tier', tier: 1, unitPrice: '0.99', amountMinor: 99 });
    expect(at(lines, 2000)).toEqual({ position: 2000, basis: 'tier', tier: 1, unitPrice: '0.99', amountMinor: 99 });
    expect(at(lines, 2001)).toEqual({ position: 2001, basis: 'tier', tier: 2, unitPrice: '0.79', amountMinor: 79 });
    expect(at(lines, 11000)).toEqual({ position: 11000, basis: 'tier', tier: 2, unitPrice: '0.79', amountMinor: 79 });
    expect(at(lines, 11001)).toEqual({ position: 11001, basis: 'tier', tier: 3, unitPrice: '0.59', amountMinor: 59 });
    // 1000 × 0 + 1000 × 99 + 9000 × 79 + 1 × 59
    expect(after).toEqual({ count: 11001, usageMinor: 99_000 + 711_000 + 59, capped: 0 });
  });

  it('continues from what the period already holds', () => {
    const { lines, after } = priceNextOutcomes(hybrid, 'USD', { count: 1999, usageMinor: 999 * 99, capped: 0 }, 3);
    expect(lines.map((l) => [l.position, l.tier, l.amountMinor])).toEqual([
      [2000, 1, 99],
      [2001, 2, 79],
      [2002, 2, 79],
    ]);
    expect(after).toEqual({ count: 2002, usageMinor: 999 * 99 + 99 + 79 + 79, capped: 0 });
  });

  it('a single tier is a flat price; zero outcomes give no lines', () => {
    const flat = PricingSchema.parse({ tiers: [{ unitPrice: '0.25' }] });
    const { lines, after } = priceNextOutcomes(flat, 'USD', EMPTY, 5);
    expect(lines.map((l) => [l.position, l.basis, l.tier, l.unitPrice, l.amountMinor])).toEqual(
      [1, 2, 3, 4, 5].map((p) => [p, 'tier', 1, '0.25', 25]),
    );
    expect(after).toEqual({ count: 5, usageMinor: 125, capped: 0 });
    expect(priceNextOutcomes(flat, 'USD', after, 0)).toEqual({ lines: [], after });
  });

  it('unit prices are reported normalised', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '0.50' }] });
    expect(priceNextOutcomes(p, 'USD', EMPTY, 1).lines[0]).toMatchObject({ unitPrice: '0.5', amountMinor: 50 });
  });

  it('count cap: included outcomes count toward it, outcomes past it are capped at zero', () => {
    const p = PricingSchema.parse({ included: 2, tiers: [{ unitPrice: '1.00' }], cap: { count: 5 } });
    const { lines, after } = priceNextOutcomes(p, 'USD', EMPTY, 8);
    expect(lines.map((l) => [l.position, l.basis, l.amountMinor])).toEqual([
      [1, 'included', 0],
      [2, 'included', 0],
      [3, 'tier', 100],
      [4, 'tier', 100],
      [5, 'tier', 100],
      [6, 'capped', 0],
      [7, 'capped', 0],
      [8, 'capped', 0],
    ]);
    expect(lines.filter((l) => l.basis === 'capped').every((l) => l.tier === null && l.unitPrice === '0')).toBe(true);
    expect(after).toEqual({ count: 8, usageMinor: 300, capped: 3 });
  });

  it('amount cap: no partial line, never exceeded, and everything after the first capped outcome is capped', () => {
    // 1.00 for the first 4 overage outcomes, then 0.30. Cap 3.50: the 4th outcome (1.00) would
    // take usage to 4.00, so it is capped; the 5th (0.30) would still fit but is capped too.
    const p = PricingSchema.parse({
      tiers: [{ upTo: 4, unitPrice: '1.00' }, { unitPrice: '0.30' }],
      cap: { amount: '3.50' },
    });
    const { lines, after } = priceNextOutcomes(p, 'USD', EMPTY, 7);
    expect(lines.map((l) => [l.basis, l.amountMinor])).toEqual([
      ['tier', 100],
      ['tier', 100],
      ['tier', 100],
      ['capped', 0],
      ['capped', 0],
      ['capped', 0],
      ['capped', 0],
    ]);
    expect(after).toEqual({ count: 7, usageMinor: 300, capped: 4 });
    // Chunked: the next call knows the period is capped from `capped`, not from the amounts.
    expect(priceNextOutcomes(p, 'USD', { count: 4, usageMinor: 300, capped: 1 }, 2).lines.map((l) => l.basis)).toEqual([
      'capped',
      'capped',
    ]);
  });

  it('amount cap reached exactly: the line that lands on the cap is charged, the next one capped', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '1.50' }], cap: { amount: '4.50' } });
    const { lines, after } = priceNextOutcomes(p, 'USD', EMPTY, 4);
    expect(lines.map((l) => l.basis)).toEqual(['tier', 'tier', 'tier', 'capped']);
    expect(after).toEqual({ count: 4, usageMinor: 450, capped: 1 });
  });

  it('included outcomes never use an amount cap; the base fee is not part of it', () => {
    const p = PricingSchema.parse({
      baseFee: '100.00',
      included: 3,
      tiers: [{ unitPrice: '2.00' }],
      cap: { amount: '2.00' },
    });
    const { lines } = priceNextOutcomes(p, 'USD', EMPTY, 5);
    expect(lines.map((l) => l.basis)).toEqual(['included', 'included', 'included', 'tier', 'capped']);
  });

  it('price index multiplier: 0.99 × 1.10 = 1.089 exactly, rounded once to 109 cents', () => {
    const p = PricingSchema.parse({
      tiers: [{ upTo: 1, unitPrice: '0.99' }, { unitPrice: '0.004' }],
      indexSeries: 'gpu-cost',
    });
    const { lines, after } = priceNextOutcomes(p, 'USD', EMPTY, 2, '1.10');
    expect(lines[0]).toEqual({ position: 1, basis: 'tier', tier: 1, unitPrice: '1.089', amountMinor: 109 });
    // 0.004 × 1.25 = 0.005 → 1 cent: rounding the unscaled price first (0.00) would give 0.
    expect(priceNextOutcomes(p, 'USD', { count: 1, usageMinor: 109, capped: 0 }, 1, '1.25').lines[0]).toMatchObject({
      unitPrice: '0.005',
      amountMinor: 1,
    });
    expect(after.usageMinor).toBe(109 + 0);
    // Without a multiplier the prices apply as written, and "1" changes nothing.
    expect(priceNextOutcomes(p, 'USD', EMPTY, 2).lines).toEqual(priceNextOutcomes(p, 'USD', EMPTY, 2, '1.000').lines);
    expect(priceNextOutcomes(p, 'USD', EMPTY, 1).lines[0]).toMatchObject({ unitPrice: '0.99', amountMinor: 99 });
  });

  it('refuses a multiplier the contract did not ask for, malformed ones, and effective prices beyond 12 decimals', () => {
    const plain = PricingSchema.parse({ tiers: [{ unitPrice: '0.99' }] });
    const indexed = PricingSchema.parse({ tiers: [{ unitPrice: '0.123456789' }], indexSeries: 'gpu-cost' });
    expect(codeOf(() => priceNextOutcomes(plain, 'USD', EMPTY, 1, '1.10'))).toBe('unexpected_multiplier');
    expect(codeOf(() => priceNextOutcomes(indexed, 'USD', EMPTY, 1, '-1'))).toBe('invalid_multiplier');
    expect(codeOf(() => priceNextOutcomes(indexed, 'USD', EMPTY, 1, '1,1'))).toBe('invalid_multiplier');
    expect(codeOf(() => priceNextOutcomes(indexed, 'USD', EMPTY, 1, '1.0001'))).toBe('price_too_precise');
    expect(codeOf(() => priceNextOutcomes(indexed, 'USD', EMPTY, 1, '1.001'))).toBeUndefined();
  });

  it('refuses bad arguments with stable codes', () => {
    expect(codeOf(() => priceNextOutcomes(hybrid, 'usd', EMPTY, 1))).toBe('unknown_currency');
    expect(codeOf(() => priceNextOutcomes(hybrid, 'USD', EMPTY, -1))).toBe('invalid_count');
    expect(codeOf(() => priceNextOutcomes(hybrid, 'USD', EMPTY, 1.5))).toBe('invalid_count');
    expect(codeOf(() => priceNextOutcomes(hybrid, 'USD', { count: 1, usageMinor: 0, capped: 2 }, 1))).toBe(
      'invalid_usage',
    );
    expect(codeOf(() => priceNextOutcomes(hybrid, 'USD', { count: 1, usageMinor: -5, capped: 0 }, 1))).toBe(
      'invalid_usage',
    );
  });

  it('JPY (0 decimals): whole yen, half a yen rounds up', () => {
    const p = PricingSchema.parse({
      baseFee: '5000',
      tiers: [{ upTo: 2, unitPrice: '120' }, { unitPrice: '99.5' }],
      cap: { amount: '400' },
    });
    const { lines, after } = priceNextOutcomes(p, 'JPY', EMPTY, 5);
    expect(lines.map((l) => [l.basis, l.unitPrice, l.amountMinor])).toEqual([
      ['tier', '120', 120],
      ['tier', '120', 120],
      ['tier', '99.5', 100],
      ['capped', '0', 0],
      ['capped', '0', 0],
    ]);
    expect(after).toEqual({ count: 5, usageMinor: 340, capped: 2 });
    expect(baseFeeMinor(p, 'JPY')).toBe(5000);
    expect(formatMinorUnits(after.usageMinor, 'JPY')).toBe('340');
  });

  it('BHD (3 decimals): fils, rounded once per line', () => {
    const p = PricingSchema.parse({
      baseFee: '12.5',
      included: 1,
      tiers: [{ upTo: 2, unitPrice: '0.1235' }, { unitPrice: '0.1234' }],
    });
    const { lines, after } = priceNextOutcomes(p, 'BHD', EMPTY, 4);
    expect(lines.map((l) => [l.basis, l.amountMinor])).toEqual([
      ['included', 0],
      ['tier', 124],
      ['tier', 124],
      ['tier', 123],
    ]);
    expect(after.usageMinor).toBe(371);
    expect(baseFeeMinor(p, 'BHD')).toBe(12_500);
    expect(formatMinorUnits(after.usageMinor, 'BHD')).toBe('0.371');
  });
});

describe('baseFeeMinor', () => {
  it('is the base fee in minor units, 0 without one, and never scaled by the index', () => {
    expect(baseFeeMinor(hybrid, 'USD')).toBe(50_000);
    expect(baseFeeMinor(PricingSchema.parse({ baseFee: '0.995', tiers: [{ unitPrice: '1' }] }), 'USD')).toBe(100);
    expect(baseFeeMinor(PricingSchema.parse({ tiers: [{ unitPrice: '1' }] }), 'USD')).toBe(0);
    expect(
      baseFeeMinor(
        PricingSchema.parse({ baseFee: '500', tiers: [{ unitPrice: '1' }], indexSeries: 'gpu-cost' }),
        'JPY',
      ),
    ).toBe(500);
    expect(codeOf(() => baseFeeMinor(hybrid, 'XYZ'))).toBe('unknown_currency');
  });
});

describe('alertsCrossed', () => {
  const capped = PricingSchema.parse({
    tiers: [{ unitPrice: '1.00' }],
    cap: { amount: '10.00' },
    alerts: [0.5, 0.8, 1.0],
  });

  it('reports 0.5, 0.8 and 1.0 once each across successive chunks', () => {
    const { afters } = inChunks(capped, 'USD', [3, 2, 3, 1, 1, 5]);
    const befores = [EMPTY, ...afters.slice(0, -1)];
    const fired = afters.map((after, i) => alertsCrossed(capped, 'USD', befores[i], after));
    // usage: 300, 500, 800, 900, 1000, then capped
    expect(fired).toEqual([[], [0.5], [0.8], [], [1], []]);
  });

  it('reports several thresholds crossed by one chunk, ascending', () => {
    expect(alertsCrossed(capped, 'USD', EMPTY, priceNextOutcomes(capped, 'USD', EMPTY, 12).after)).toEqual([
      0.5, 0.8, 1,
    ]);
  });

  it('an amount cap the usage cannot land on exactly: capped outcomes do not fire 100% early', () => {
    // The issue's case: 10.00 a line under a 45.00 cap stops at 40.00 (88.9%); the fifth outcome
    // is capped. Usage never reaches 45.00, so 100% never fires; 80% fired at 40.00.
    const p = PricingSchema.parse({
      tiers: [{ unitPrice: '10.00' }],
      cap: { amount: '45.00' },
      alerts: [0.5, 0.8, 1.0],
    });
    const four = priceNextOutcomes(p, 'USD', EMPTY, 4).after;
    expect(four).toEqual({ count: 4, usageMinor: 4000, capped: 0 });
    expect(alertsCrossed(p, 'USD', EMPTY, four)).toEqual([0.5, 0.8]);
    const fifth = priceNextOutcomes(p, 'USD', four, 3).after;
    expect(fifth).toEqual({ count: 7, usageMinor: 4000, capped: 3 });
    expect(alertsCrossed(p, 'USD', four, fifth)).toEqual([]);
    expect(alertsCrossed(p, 'USD', EMPTY, fifth)).toEqual([0.5, 0.8]);
  });

  it('amount cap boundary: one minor unit below does not fire, exactly at and above do', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '0.01' }], cap: { amount: '10.00' }, alerts: [0.8, 1.0] });
    const at = (usageMinor: number) => alertsCrossed(p, 'USD', EMPTY, { count: usageMinor, usageMinor, capped: 0 });
    expect(at(799)).toEqual([]);
    expect(at(800)).toEqual([0.8]);
    expect(at(801)).toEqual([0.8]);
    expect(at(999)).toEqual([0.8]);
    expect(at(1000)).toEqual([0.8, 1]);
    // Above the cap cannot happen through pricing; a raised-then-lowered cap can leave it there.
    expect(at(1001)).toEqual([0.8, 1]);
    // Capped outcomes alone never reach a threshold.
    expect(alertsCrossed(p, 'USD', EMPTY, { count: 805, usageMinor: 799, capped: 6 })).toEqual([]);
  });

  it('count cap boundary: just below, exactly at and above the cap count', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '1.00' }], cap: { count: 9 }, alerts: [1.0] });
    const at = (count: number) => alertsCrossed(p, 'USD', EMPTY, priceNextOutcomes(p, 'USD', EMPTY, count).after);
    expect(at(8)).toEqual([]);
    expect(at(9)).toEqual([1]);
    expect(at(10)).toEqual([1]);
  });

  it('commitment boundary: just below, exactly at and above', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '1.00' }], alerts: [1.0] });
    const at = (usageMinor: number) => alertsCrossed(p, 'USD', EMPTY, { count: 1, usageMinor, capped: 0 }, 4500);
    expect(at(4499)).toEqual([]);
    expect(at(4500)).toEqual([1]);
    expect(at(4501)).toEqual([1]);
  });

  it('count cap: count / cap, included outcomes counting', () => {
    const p = PricingSchema.parse({
      included: 2,
      tiers: [{ unitPrice: '1.00' }],
      cap: { count: 4 },
      alerts: [0.5, 1.0],
    });
    const { afters } = inChunks(p, 'USD', [1, 1, 1, 1, 3]);
    const befores = [EMPTY, ...afters.slice(0, -1)];
    expect(afters.map((a, i) => alertsCrossed(p, 'USD', befores[i], a))).toEqual([[], [0.5], [], [1], []]);
  });

  it('without a cap: fractions of the commitment; without either: nothing', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '1.00' }], alerts: [0.5, 1.0] });
    const four = { count: 4, usageMinor: 400, capped: 0 };
    const five = { count: 5, usageMinor: 500, capped: 0 };
    expect(alertsCrossed(p, 'USD', four, five, 1000)).toEqual([0.5]);
    expect(alertsCrossed(p, 'USD', EMPTY, five, 1000)).toEqual([0.5]);
    expect(alertsCrossed(p, 'USD', five, { count: 10, usageMinor: 1000, capped: 0 }, 1000)).toEqual([1]);
    expect(alertsCrossed(p, 'USD', EMPTY, five)).toEqual([]);
    expect(alertsCrossed(p, 'USD', EMPTY, five, 0)).toEqual([]);
    expect(alertsCrossed(PricingSchema.parse({ tiers: [{ unitPrice: '1' }] }), 'USD', EMPTY, five, 1000)).toEqual([]);
  });

  it('compares exactly, not in floating point', () => {
    // 0.7 × 10 = 7 exactly; 7/10 and 0.7 agree, 69999/100000 does not reach it.
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '1' }], alerts: [0.7] });
    expect(alertsCrossed(p, 'USD', EMPTY, { count: 7, usageMinor: 7, capped: 0 }, 10)).toEqual([0.7]);
    expect(alertsCrossed(p, 'USD', EMPTY, { count: 1, usageMinor: 69_999, capped: 0 }, 100_000)).toEqual([]);
  });
});

describe('alertsToRecord', () => {
  it('measures an amount cap in minor units, rounded like every amount', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '1' }], cap: { amount: '10.005' }, alerts: [0.5, 1] });
    expect(alertsToRecord(p, 'USD', EMPTY, { count: 6, usageMinor: 600, capped: 0 })).toEqual([
      { threshold: 0.5, basis: 'cap', usageMinor: 600, limitMinor: 1001 },
    ]);
  });

  it('measures a count cap in outcomes', () => {
    const p = PricingSchema.parse({ included: 2, tiers: [{ unitPrice: '1' }], cap: { count: 4 }, alerts: [0.5, 1] });
    expect(alertsToRecord(p, 'USD', EMPTY, { count: 4, usageMinor: 200, capped: 0 })).toEqual([
      { threshold: 0.5, basis: 'cap', usageMinor: 4, limitMinor: 4 },
      { threshold: 1, basis: 'cap', usageMinor: 4, limitMinor: 4 },
    ]);
  });

  it('measures the commitment without a cap, and records nothing without either', () => {
    const p = PricingSchema.parse({ tiers: [{ unitPrice: '1' }], alerts: [0.8] });
    const after = { count: 9, usageMinor: 900, capped: 0 };
    expect(alertsToRecord(p, 'USD', EMPTY, after, 1000)).toEqual([
      { threshold: 0.8, basis: 'commitment', usageMinor: 900, limitMinor: 1000 },
    ]);
    expect(alertsToRecord(p, 'USD', EMPTY, after)).toEqual([]);
  });
});

describe('projectPeriod', () => {
  const withCap = (cap: object) => PricingSchema.parse({ ...hybridJson, cap });
  // 10 of 30 days gone, 1500 outcomes so far: 1000 included + 500 at 0.99 = 495.00.
  const soFar: PeriodUsage = { count: 1500, usageMinor: 49_500, capped: 0 };

  it('projects the run rate and prices the rest with the tiers (no cap reached)', () => {
    const r = projectPeriod(withCap({ amount: '5000.00' }), 'USD', {
      usageSoFar: soFar,
      daysElapsed: 10,
      daysInPeriod: 30,
      baseFee: true,
    });
    // 150/day × 30 = 4500; 1501..2000 at 0.99 (495.00), 2001..4500 at 0.79 (1975.00).
    expect(r).toEqual({
      projectedCount: 4500,
      projectedUsageMinor: 49_500 + 49_500 + 197_500,
      projectedTotalMinor: 296_500 + 50_000,
      capReachedOnDay: null,
    });
    const noFee = projectPeriod(hybrid, 'USD', {
      usageSoFar: soFar,
      daysElapsed: 10,
      daysInPeriod: 30,
      baseFee: false,
    });
    expect(noFee).toEqual({
      projectedCount: 4500,
      projectedUsageMinor: 296_500,
      projectedTotalMinor: 296_500,
      capReachedOnDay: null,
    });
  });

  it('count cap 3000: reached on day 20 (150/day), outcomes after it priced at zero', () => {
    const r = projectPeriod(withCap({ count: 3000 }), 'USD', {
      usageSoFar: soFar,
      daysElapsed: 10,
      daysInPeriod: 30,
      baseFee: false,
    });
    // 1501..2000 at 0.99 (495.00), 2001..3000 at 0.79 (790.00), 3001..4500 capped.
    expect(r).toEqual({
      projectedCount: 4500,
      projectedUsageMinor: 49_500 + 49_500 + 79_000,
      projectedTotalMinor: 178_000,
      capReachedOnDay: 20,
    });
  });

  it('amount cap 2000.00: the first capped outcome is #3279, reached on day 22', () => {
    // 990.00 by #2000; then room 1010.00 / 0.79 = 1278 whole outcomes (#2001..#3278, 1009.62).
    // #3279 is capped; at 150/day round(150·21) = 3150 < 3279 <= round(150·22) = 3300.
    const r = projectPeriod(withCap({ amount: '2000.00' }), 'USD', {
      usageSoFar: soFar,
      daysElapsed: 10,
      daysInPeriod: 30,
      baseFee: false,
    });
    expect(r).toEqual({
      projectedCount: 4500,
      projectedUsageMinor: 99_000 + 1278 * 79,
      projectedTotalMinor: 199_962,
      capReachedOnDay: 22,
    });
  });

  it('a cap already reached: the run-rate day it was reached', () => {
    // count cap 1000 with 1500 outcomes in 10 days: round(150·6) = 900 < 1000 <= round(150·7).
    const r = projectPeriod(withCap({ count: 1000 }), 'USD', {
      usageSoFar: { count: 1500, usageMinor: 0, capped: 500 },
      daysElapsed: 10,
      daysInPeriod: 30,
      baseFee: false,
    });
    expect(r).toEqual({ projectedCount: 4500, projectedUsageMinor: 0, projectedTotalMinor: 0, capReachedOnDay: 7 });
  });

  it('rounds the projected count half up', () => {
    // 3 in 2 days of 3: 4.5 → 5.
    const flat = PricingSchema.parse({ tiers: [{ unitPrice: '1' }], cap: { count: 5 } });
    const r = projectPeriod(flat, 'USD', {
      usageSoFar: { count: 3, usageMinor: 300, capped: 0 },
      daysElapsed: 2,
      daysInPeriod: 3,
      baseFee: false,
    });
    expect(r).toEqual({ projectedCount: 5, projectedUsageMinor: 500, projectedTotalMinor: 500, capReachedOnDay: 3 });
  });

  it('daysElapsed 0: nothing beyond the usage so far', () => {
    const r = projectPeriod(withCap({ count: 10 }), 'USD', {
      usageSoFar: EMPTY,
      daysElapsed: 0,
      daysInPeriod: 31,
      baseFee: true,
    });
    expect(r).toEqual({
      projectedCount: 0,
      projectedUsageMinor: 0,
      projectedTotalMinor: 50_000,
      capReachedOnDay: null,
    });
  });

  it('refuses impossible day counts', () => {
    const args = { usageSoFar: EMPTY, baseFee: false };
    expect(codeOf(() => projectPeriod(hybrid, 'USD', { ...args, daysElapsed: 31, daysInPeriod: 30 }))).toBe(
      'invalid_days',
    );
    expect(codeOf(() => projectPeriod(hybrid, 'USD', { ...args, daysElapsed: -1, daysInPeriod: 30 }))).toBe(
      'invalid_days',
    );
    expect(codeOf(() => projectPeriod(hybrid, 'USD', { ...args, daysElapsed: 0, daysInPeriod: 0 }))).toBe(
      'invalid_days',
    );
    expect(codeOf(() => projectPeriod(hybrid, 'USD', { ...args, daysElapsed: Number.NaN, daysInPeriod: 30 }))).toBe(
      'invalid_days',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const currencyArb = fc.constantFrom('USD', 'JPY', 'BHD');
const tierPriceArb = fc.constantFrom(
  '0',
  '0.004',
  '0.005',
  '0.0049',
  '0.5',
  '0.99',
  '0.79',
  '1.5',
  '2',
  '0.123456',
  '10.0',
);

interface Scenario {
  pricing: Pricing;
  currency: string;
  multiplier: string | undefined;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    currency: currencyArb,
    included: fc.option(fc.nat(15), { nil: undefined }),
    widths: fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }),
    prices: fc.array(tierPriceArb, { minLength: 4, maxLength: 4 }),
    cap: fc.oneof(fc.constant(undefined), fc.record({ count: fc.nat(60) }), fc.record({ amountMinor: fc.nat(6000) })),
    multiplier: fc.option(fc.constantFrom('1', '1.10', '0.5', '0.93', '2.25', '0'), { nil: undefined }),
  })
  .map(({ currency, included, widths, prices, cap, multiplier }) => {
    let end = 0;
    const tiers = [
      ...widths.map((w, i) => {
        end += w;
        return { upTo: end, unitPrice: prices[i] };
      }),
      { unitPrice: prices[widths.length] },
    ];
    const json: Record<string, unknown> = { tiers };
    if (included !== undefined) json.included = included;
    if (cap && 'count' in cap) json.cap = { count: cap.count };
    if (cap && 'amountMinor' in cap) json.cap = { amount: formatMinorUnits(cap.amountMinor, currency) };
    if (multiplier !== undefined) json.indexSeries = 'gpu-cost';
    return { pricing: PricingSchema.parse(json), currency, multiplier };
  });

/** Cuts n into consecutive chunk sizes at the given points. */
function chunkSizes(n: number, cuts: number[]): number[] {
  const points = [...new Set(cuts.map((c) => c % (n + 1)))].sort((a, b) => a - b);
  const sizes: number[] = [];
  let last = 0;
  for (const p of [...points, n]) {
    sizes.push(p - last);
    last = p;
  }
  return sizes;
}

/** An exact decimal product written independently of multiplyDecimal, via a scaled BigInt. */
function referenceProduct(a: string, b: string): string {
  const scaleOf = (x: string) => (x.split('.')[1] ?? '').length;
  const units = BigInt(a.replace('.', '')) * BigInt(b.replace('.', ''));
  const scale = scaleOf(a) + scaleOf(b);
  const s = units.toString().padStart(scale + 1, '0');
  const text = scale === 0 ? s : `${s.slice(0, -scale)}.${s.slice(-scale)}`;
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** The pricing rules applied one outcome at a time, from an empty period, as a test oracle. */
function referenceLines(s: Scenario, n: number): PricedLine[] {
  const { pricing, currency, multiplier } = s;
  const cap = pricing.cap as { amount?: string; count?: number } | undefined;
  const capMinor = cap?.amount !== undefined ? priceToMinorUnits(cap.amount, currency) : undefined;
  const included = pricing.included ?? 0;
  let usage = 0;
  let hit = false;
  const lines: PricedLine[] = [];
  for (let position = 1; position <= n; position++) {
    const cappedLine: PricedLine = { position, basis: 'capped', tier: null, unitPrice: '0', amountMinor: 0 };
    if (hit || (cap?.count !== undefined && position > cap.count)) {
      lines.push(cappedLine);
      continue;
    }
    if (position <= included) {
      lines.push({ position, basis: 'included', tier: null, unitPrice: '0', amountMinor: 0 });
      continue;
    }
    const overage = position - included;
    const index = pricing.tiers.findIndex((t) => t.upTo === undefined || overage <= t.upTo);
    const unitPrice = referenceProduct(pricing.tiers[index].unitPrice, multiplier ?? '1');
    const amountMinor = priceToMinorUnits(unitPrice, currency);
    if (capMinor !== undefined && usage + amountMinor > capMinor) {
      hit = true;
      lines.push(cappedLine);
      continue;
    }
    usage += amountMinor;
    lines.push({ position, basis: 'tier', tier: index + 1, unitPrice, amountMinor });
  }
  return lines;
}

const runArb = fc.record({ n: fc.nat(90), cuts: fc.array(fc.nat(1000), { maxLength: 8 }) });

describe('priceNextOutcomes: properties', () => {
  it('agrees with a one-outcome-at-a-time reference of the rules', () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(90), (s, n) => {
        expect(priceNextOutcomes(s.pricing, s.currency, EMPTY, n, s.multiplier).lines).toEqual(referenceLines(s, n));
      }),
    );
  });

  it('(1) pricing a run in consecutive chunks gives the same lines and state as one call', () => {
    fc.assert(
      fc.property(scenarioArb, runArb, (s, { n, cuts }) => {
        const whole = priceNextOutcomes(s.pricing, s.currency, EMPTY, n, s.multiplier);
        const chunked = inChunks(s.pricing, s.currency, chunkSizes(n, cuts), s.multiplier);
        expect(chunked.lines).toEqual(whole.lines);
        expect(chunked.after).toEqual(whole.after);
      }),
    );
  });

  it('(2) line amounts sum to the growth of usageMinor; counts and capped grow by the lines', () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(60), fc.nat(60), (s, k, n) => {
        const before = priceNextOutcomes(s.pricing, s.currency, EMPTY, k, s.multiplier).after;
        const { lines, after } = priceNextOutcomes(s.pricing, s.currency, before, n, s.multiplier);
        expect(lines.reduce((sum, l) => sum + l.amountMinor, 0)).toBe(after.usageMinor - before.usageMinor);
        expect(after.count - before.count).toBe(n);
        expect(after.capped - before.capped).toBe(lines.filter((l) => l.basis === 'capped').length);
      }),
    );
  });

  it('(3) the amount cap is never exceeded, capping is final, and no line past a count cap is charged', () => {
    fc.assert(
      fc.property(scenarioArb, runArb, (s, { n, cuts }) => {
        const { lines, afters } = inChunks(s.pricing, s.currency, chunkSizes(n, cuts), s.multiplier);
        const cap = s.pricing.cap as { amount?: string; count?: number } | undefined;
        if (cap?.amount !== undefined) {
          const capMinor = priceToMinorUnits(cap.amount, s.currency);
          for (const a of afters) expect(a.usageMinor).toBeLessThanOrEqual(capMinor);
          const firstCapped = lines.findIndex((l) => l.basis === 'capped');
          if (firstCapped >= 0) expect(lines.slice(firstCapped).every((l) => l.basis === 'capped')).toBe(true);
        }
        if (cap?.count !== undefined) {
          expect(lines.filter((l) => l.basis !== 'capped').length).toBeLessThanOrEqual(cap.count);
          for (const l of lines) expect(l.basis === 'capped').toBe(l.position > cap.count);
        }
      }),
    );
  });

  it('(4) tier subtotals (outcomes × unit amount per tier) sum to the total usage', () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(90), (s, n) => {
        const { lines, after } = priceNextOutcomes(s.pricing, s.currency, EMPTY, n, s.multiplier);
        const byTier = new Map<number, { outcomes: number; unitPrice: string }>();
        for (const l of lines.filter((x) => x.basis === 'tier')) {
          const group = byTier.get(l.tier!) ?? { outcomes: 0, unitPrice: l.unitPrice };
          expect(l.unitPrice).toBe(group.unitPrice); // one price per tier within a call
          group.outcomes += 1;
          byTier.set(l.tier!, group);
        }
        const subtotal = [...byTier.values()].reduce(
          (sum, g) => sum + g.outcomes * priceToMinorUnits(g.unitPrice, s.currency),
          0,
        );
        expect(subtotal).toBe(after.usageMinor);
        // Tiers are used in order: a line's tier never goes down.
        const tiers = lines.filter((x) => x.basis === 'tier').map((x) => x.tier!);
        expect(tiers).toEqual([...tiers].sort((a, b) => a - b));
      }),
    );
  });

  it('(5) positions are consecutive from what the period held', () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(40), fc.nat(40), (s, k, n) => {
        const before = priceNextOutcomes(s.pricing, s.currency, EMPTY, k, s.multiplier).after;
        const { lines } = priceNextOutcomes(s.pricing, s.currency, before, n, s.multiplier);
        expect(lines.map((l) => l.position)).toEqual(Array.from({ length: n }, (_, i) => k + i + 1));
      }),
    );
  });

  it('(6) every amount is >= 0 and either 0 or priceToMinorUnits(its unit price); tier lines are exactly that', () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(90), (s, n) => {
        for (const l of priceNextOutcomes(s.pricing, s.currency, EMPTY, n, s.multiplier).lines) {
          expect(Number.isSafeInteger(l.amountMinor) && l.amountMinor >= 0).toBe(true);
          if (l.basis === 'tier') {
            expect(l.amountMinor).toBe(priceToMinorUnits(l.unitPrice, s.currency));
            expect(l.unitPrice).toBe(multiplyDecimal(s.pricing.tiers[l.tier! - 1].unitPrice, s.multiplier ?? '1'));
          } else {
            expect(l).toMatchObject({ tier: null, unitPrice: '0', amountMinor: 0 });
          }
        }
      }),
    );
  });
});

describe('alertsCrossed and projectPeriod: properties', () => {
  it('each threshold fires at most once per period, however the period is chunked', () => {
    const withAlerts = scenarioArb.map((s) => ({ ...s, pricing: { ...s.pricing, alerts: [0.25, 0.5, 0.8, 1] } }));
    fc.assert(
      fc.property(
        withAlerts,
        runArb,
        fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined }),
        (s, { n, cuts }, commitment) => {
          const { afters } = inChunks(s.pricing, s.currency, chunkSizes(n, cuts), s.multiplier);
          const befores = [EMPTY, ...afters.slice(0, -1)];
          const fired = afters.flatMap((a, i) => alertsCrossed(s.pricing, s.currency, befores[i], a, commitment));
          expect(new Set(fired).size).toBe(fired.length);
          const end = afters[afters.length - 1] ?? EMPTY;
          expect([...fired].sort((a, b) => a - b)).toEqual(
            alertsCrossed(s.pricing, s.currency, EMPTY, end, commitment),
          );
        },
      ),
    );
  });

  it('alertsToRecord records exactly the thresholds alertsCrossed reports, with the measure they were taken against', () => {
    const withAlerts = scenarioArb.map((s) => ({ ...s, pricing: { ...s.pricing, alerts: [0.25, 0.5, 0.8, 1] } }));
    fc.assert(
      fc.property(
        withAlerts,
        fc.nat(60),
        fc.nat(60),
        fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined }),
        (s, a, b, commitment) => {
          const before = priceNextOutcomes(s.pricing, s.currency, EMPTY, Math.min(a, b), s.multiplier).after;
          const after = priceNextOutcomes(s.pricing, s.currency, EMPTY, Math.max(a, b), s.multiplier).after;
          const recorded = alertsToRecord(s.pricing, s.currency, before, after, commitment);
          expect(recorded.map((r) => r.threshold)).toEqual(
            alertsCrossed(s.pricing, s.currency, before, after, commitment),
          );
          const cap = s.pricing.cap as { amount?: string; count?: number } | undefined;
          const measure =
            cap?.count !== undefined
              ? { basis: 'cap', usageMinor: after.count, limitMinor: cap.count }
              : cap?.amount !== undefined
                ? { basis: 'cap', usageMinor: after.usageMinor, limitMinor: priceToMinorUnits(cap.amount, s.currency) }
                : { basis: 'commitment', usageMinor: after.usageMinor, limitMinor: commitment };
          for (const r of recorded) expect(r).toEqual({ threshold: r.threshold, ...measure });
        },
      ),
    );
  });

  it('the projection prices the projected remainder with the engine, and names a cap day exactly when the cap is reached', () => {
    fc.assert(
      fc.property(
        scenarioArb,
        fc.nat(60),
        fc.integer({ min: 28, max: 31 }),
        fc.nat(31),
        fc.boolean(),
        (s, count, daysInPeriod, elapsedSeed, fractional) => {
          const daysElapsed = fractional ? (elapsedSeed % daysInPeriod) + 0.37 : elapsedSeed % (daysInPeriod + 1);
          const usageSoFar = priceNextOutcomes(s.pricing, s.currency, EMPTY, count, s.multiplier).after;
          const r = projectPeriod(s.pricing, s.currency, {
            usageSoFar,
            daysElapsed,
            daysInPeriod,
            baseFee: false,
            multiplier: s.multiplier,
          });
          expect(r.projectedCount).toBeGreaterThanOrEqual(count);
          if (daysElapsed > 0) expect(r.projectedCount).toBe(Math.round((count * daysInPeriod) / daysElapsed));
          const rest = priceNextOutcomes(s.pricing, s.currency, usageSoFar, r.projectedCount - count, s.multiplier);
          expect(r.projectedUsageMinor).toBe(rest.after.usageMinor);
          expect(r.projectedTotalMinor).toBe(r.projectedUsageMinor);
          const cap = s.pricing.cap as { amount?: string; count?: number } | undefined;
          const end = rest.after;
          const reached =
            count > 0 &&
            (end.capped > 0 ||
              (cap?.count !== undefined && cap.count > 0 && end.count >= cap.count) ||
              (cap?.amount !== undefined &&
                priceToMinorUnits(cap.amount, s.currency) > 0 &&
                end.usageMinor >= priceToMinorUnits(cap.amount, s.currency)));
          expect(r.capReachedOnDay !== null).toBe(reached);
          if (r.capReachedOnDay !== null) {
            expect(r.capReachedOnDay).toBeGreaterThanOrEqual(1);
            expect(r.capReachedOnDay).toBeLessThanOrEqual(daysInPeriod);
          }
        },
      ),
    );
  });
});
