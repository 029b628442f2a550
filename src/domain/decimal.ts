import { ReconError } from './errors';

/**
 * Exact decimal arithmetic on strings, the one place money and pricing turn decimal text into
 * numbers and back. A decimal is an integer `units` and a `scale`: its value is units / 10^scale.
 * BigInt throughout, so no binary floating point ever touches a price.
 */
export interface Decimal {
  units: bigint;
  scale: number;
}

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;
const NON_NEGATIVE_DECIMAL = /^\d+(?:\.\d+)?$/;

/** Reads "-12.50" as { units: -1250n, scale: 2 }; null for anything else ("1.", ".5", "1e3", " 1"). */
export function readDecimal(text: unknown): Decimal | null {
  const match = typeof text === 'string' ? DECIMAL.exec(text) : null;
  if (!match) return null;
  const [, sign, whole, fraction = ''] = match;
  const units = BigInt(whole + fraction);
  return { units: sign ? -units : units, scale: fraction.length };
}

const NUMBER_SPELLING = /^(\d+)(?:\.(\d+))?(?:e-(\d+))?$/;

/**
 * A non-negative JavaScript number as the exact decimal of its shortest spelling (String(f)):
 * 0.8 → { units: 8n, scale: 1 }, 1e-7 → { units: 1n, scale: 7 }, not the binary fraction
 * 0.8000000000000000444. null for a negative, non-finite or too large (1e+21) number.
 */
export function decimalOfNumber(f: number): Decimal | null {
  const match = NUMBER_SPELLING.exec(String(f));
  if (!match) return null;
  const [, whole, fraction = '', exponent = '0'] = match;
  return { units: BigInt(whole + fraction), scale: fraction.length + Number(exponent) };
}

/** Whether `text` is a decimal without a sign, such as "0", "1.10" or "007.5". */
export function isNonNegativeDecimal(text: unknown): text is string {
  return typeof text === 'string' && NON_NEGATIVE_DECIMAL.test(text);
}

/** readDecimal, refusing what it cannot read with invalid_decimal; `what` names the value in the error. */
export function parseDecimal(text: string, what: string): Decimal {
  const decimal = readDecimal(text);
  if (!decimal) {
    throw new ReconError('invalid_decimal', `invalid ${what} "${String(text)}" (expected a decimal such as "1.10")`, {
      [what]: text,
    });
  }
  return decimal;
}

/** units / 10^scale with exactly `scale` decimals: (5n, 2) → "0.05", (-1250n, 2) → "-12.50", (7n, 0) → "7". */
export function formatFixed(units: bigint, scale: number): string {
  const negative = units < 0n;
  const magnitude = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const whole = magnitude.slice(0, magnitude.length - scale);
  const fraction = magnitude.slice(magnitude.length - scale);
  return `${negative ? '-' : ''}${whole}${scale > 0 ? `.${fraction}` : ''}`;
}

/**
 * units / 10^scale normalised: no trailing fractional zeros, no leading zeros but the one of
 * "0.x", no "-0" (a negative `units` is never zero). (1250n, 3) → "1.25".
 */
export function formatDecimal(units: bigint, scale: number): string {
  const fixed = formatFixed(units, scale);
  return scale > 0 ? fixed.replace(/\.?0+$/, '') : fixed;
}

/** The same decimal in its normal spelling: "007.50" → "7.5", "0.000" → "0". */
export function normaliseDecimal(text: string): string {
  const { units, scale } = parseDecimal(text, 'decimal');
  return formatDecimal(units, scale);
}

/** How many decimals a decimal string is written with: "1.089" → 3, "12" → 0. */
export function decimalPlaces(text: string): number {
  return parseDecimal(text, 'decimal').scale;
}

/**
 * The exact product of two decimal strings, normalised (see formatDecimal).
 * "0.99" × "1.10" = "1.089".
 */
export function multiplyDecimal(a: string, b: string): string {
  const x = parseDecimal(a, 'decimal');
  const y = parseDecimal(b, 'decimal');
  return formatDecimal(x.units * y.units, x.scale + y.scale);
}

/**
 * THE rounding rule of the ledger: `value` rounded half away from zero to `scale` decimals,
 * returned as units of 10^-scale. ("0.995", 2) → 100n, ("-0.125", 2) → -13n, ("0.994", 2) → 99n.
 * A value with `scale` decimals or fewer is exact (it is only rescaled).
 */
export function roundHalfAwayFromZero(value: Decimal, scale: number): bigint {
  if (value.scale <= scale) return value.units * 10n ** BigInt(scale - value.scale);
  const divisor = 10n ** BigInt(value.scale - scale);
  const negative = value.units < 0n;
  const magnitude = negative ? -value.units : value.units;
  const kept = magnitude / divisor;
  const rounded = 2n * (magnitude % divisor) >= divisor ? kept + 1n : kept;
  return negative ? -rounded : rounded;
}
