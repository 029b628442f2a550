import { z } from 'zod';
import { formatFixed, readDecimal, roundHalfAwayFromZero } from './decimal';
import { ReconError } from './errors';

// Intl accepts any well-formed code (it gives 'XYZ' two decimals), so "known" is decided by
// whether ICU has a name for it. That admits historic and special codes (DEM, XAU) but not typos.
const currencyNames = new Intl.DisplayNames('en', { type: 'currency', fallback: 'none' });
const minorUnitsCache = new Map<string, number>();

export function minorUnitsOf(currency: string): number {
  const cached = minorUnitsCache.get(currency);
  if (cached !== undefined) return cached;
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency) || currencyNames.of(currency) === undefined) {
    throw new ReconError(
      'unknown_currency',
      `unknown currency "${String(currency)}" (expected an ISO 4217 code such as USD)`,
      {
        currency,
      },
    );
  }
  let digits: number;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    throw new ReconError('unknown_currency', `unknown currency "${currency}"`, { currency });
  }
  minorUnitsCache.set(currency, digits);
  return digits;
}

/** The most decimals a price may be written with (a tier price times an index multiplier too). */
export const MAX_PRICE_DECIMALS = 12;
const DECIMAL_PRICE_PATTERN = /^(\d+)(?:\.(\d{1,12}))?$/;

export const DecimalPriceSchema = z
  .string()
  .regex(
    DECIMAL_PRICE_PATTERN,
    `expected a non-negative decimal price in major units with at most ${MAX_PRICE_DECIMALS} decimals, e.g. "0.99"`,
  );

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The largest amount the ledger holds, in minor units. The column is bigint, but amounts are
 * summed and compared in JavaScript numbers, so they stay within Number.MAX_SAFE_INTEGER.
 */
export const MAX_LEDGER_MINOR = Number.MAX_SAFE_INTEGER;

/**
 * The most outcomes of one type a billing period is taken to hold when a contract's prices are
 * checked against MAX_LEDGER_MINOR: a unit price may be at most MAX_LEDGER_MINOR / this.
 */
export const MAX_OUTCOMES_PER_PERIOD = 100_000_000;

/**
 * Converts a unit price written in major units ("0.995" USD) to integer minor units (100).
 *
 * THE rounding rule: round half away from zero to the currency's minor unit, applied once per
 * ledger line (to the line's unit price, never to sums). Prices are non-negative here, so this
 * is "a dropped remainder of one half or more rounds up" (roundHalfAwayFromZero in decimal.ts,
 * exact, with BigInt).
 */
export function priceToMinorUnits(price: string, currency: string): number {
  const digits = minorUnitsOf(currency);
  const decimal = typeof price === 'string' && DECIMAL_PRICE_PATTERN.test(price) ? readDecimal(price) : null;
  if (!decimal) {
    throw new ReconError('invalid_price', `invalid price "${String(price)}" (expected a decimal such as "0.99")`, {
      price,
    });
  }
  const minor = roundHalfAwayFromZero(decimal, digits);
  if (minor > MAX_SAFE) {
    throw new ReconError('amount_too_large', `price "${price}" ${currency} exceeds the largest supported amount`, {
      price,
      currency,
    });
  }
  return Number(minor);
}

/** Integer minor units to a decimal string with exactly the currency's digits: 5 USD-cents → "0.05". */
export function formatMinorUnits(amountMinor: number | bigint, currency: string): string {
  if (typeof amountMinor === 'number' && !Number.isSafeInteger(amountMinor)) {
    throw new ReconError('invalid_amount', `amount ${amountMinor} is not a whole number of minor units`, {
      amountMinor,
    });
  }
  return formatFixed(BigInt(amountMinor), minorUnitsOf(currency));
}

/** An amount for people: decimals in the currency's own digits and the code, "12.50 EUR", "1500 JPY". */
export function formatMoney(amountMinor: number | bigint | string, currency: string): string {
  return `${formatMinorUnits(BigInt(amountMinor), currency)} ${currency}`;
}
