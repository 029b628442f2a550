import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from './helpers';
import { DecimalPriceSchema, formatMinorUnits, minorUnitsOf, priceToMinorUnits } from '../../src/domain/money';

/**
 * Reference rounding written independently of the implementation: the price as an exact
 * fraction n / 10^k, scaled to minor units, rounded half away from zero by comparing twice the
 * remainder with the denominator.
 */
function referenceMinorUnits(price: string, digits: number): bigint {
  const [whole, fraction = ''] = price.split('.');
  const numerator = BigInt(whole + fraction) * 10n ** BigInt(digits);
  const denominator = 10n ** BigInt(fraction.length);
  const quotient = numerator / denominator;
  const remainder = numerator % denominator;
  return 2n * remainder >= denominator ? quotient + 1n : quotient;
}

const priceArb = fc
  .tuple(
    // Up to 10^11 major units: times 10^4 (CLF) still a safe integer.
    fc.bigInt({ min: 0n, max: 10n ** 11n }),
    fc.string({ unit: fc.constantFrom(...'0123456789'.split('')), maxLength: 12 }),
  )
  .map(([whole, fraction]) => (fraction === '' ? whole.toString() : `${whole}.${fraction}`));

const currencyArb = fc.constantFrom('USD', 'JPY', 'BHD', 'EUR', 'KWD', 'CLF');

describe('minorUnitsOf', () => {
  it.each([
    ['JPY', 0],
    ['USD', 2],
    ['EUR', 2],
    ['BHD', 3],
    ['KWD', 3],
    ['CLF', 4],
  ])('%s has %i decimals', (currency, digits) => {
    expect(minorUnitsOf(currency)).toBe(digits);
  });

  it.each(['usd', 'US', 'USDX', '', 'XYZ', 'QQQ', '12$'])('rejects %j as unknown_currency', (currency) => {
    expect(codeOf(() => minorUnitsOf(currency))).toBe('unknown_currency');
  });
});

describe('priceToMinorUnits', () => {
  it.each([
    ['0.99', 'USD', 99],
    ['0.995', 'USD', 100],
    ['0.994', 'USD', 99],
    ['0.005', 'USD', 1],
    ['0.0049999999', 'USD', 0],
    ['120', 'JPY', 120],
    ['120.5', 'JPY', 121],
    ['120.4999', 'JPY', 120],
    ['1.2345', 'BHD', 1235],
    ['1.2344', 'BHD', 1234],
    ['1', 'BHD', 1000],
    ['0', 'USD', 0],
    ['007.10', 'USD', 710],
    ['90071992547409.91', 'USD', Number.MAX_SAFE_INTEGER],
  ])('%s %s is %i minor units', (price, currency, minor) => {
    expect(priceToMinorUnits(price, currency)).toBe(minor);
  });

  it('refuses amounts past Number.MAX_SAFE_INTEGER', () => {
    expect(codeOf(() => priceToMinorUnits('90071992547409.92', 'USD'))).toBe('amount_too_large');
    expect(codeOf(() => priceToMinorUnits('90071992547409.915', 'USD'))).toBe('amount_too_large');
    expect(codeOf(() => priceToMinorUnits('9'.repeat(40), 'JPY'))).toBe('amount_too_large');
  });

  it.each(['', '-1', '1.', '.5', '1e3', ' 1', '1,5', '0x10', 'NaN', '1.1234567890123'])(
    'rejects %j as invalid_price',
    (price) => {
      expect(codeOf(() => priceToMinorUnits(price, 'USD'))).toBe('invalid_price');
    },
  );

  it('rejects an unknown currency before looking at the price', () => {
    expect(codeOf(() => priceToMinorUnits('1', 'usd'))).toBe('unknown_currency');
  });

  it('property: equals the exact rational reference (round half away from zero)', () => {
    fc.assert(
      fc.property(priceArb, currencyArb, (price, currency) => {
        expect(BigInt(priceToMinorUnits(price, currency))).toBe(referenceMinorUnits(price, minorUnitsOf(currency)));
      }),
    );
  });

  it('property: is off by at most half a minor unit', () => {
    fc.assert(
      fc.property(priceArb, currencyArb, (price, currency) => {
        const digits = minorUnitsOf(currency);
        const [whole, fraction = ''] = price.split('.');
        const exactScaled = BigInt(whole + fraction) * 10n ** BigInt(digits); // price * 10^digits * 10^k
        const roundedScaled = BigInt(priceToMinorUnits(price, currency)) * 10n ** BigInt(fraction.length);
        const error = roundedScaled - exactScaled;
        const half = 10n ** BigInt(fraction.length);
        return 2n * (error < 0n ? -error : error) <= half;
      }),
    );
  });

  it('property: is monotone in the price', () => {
    const asFraction = (price: string): [bigint, bigint] => {
      const [whole, fraction = ''] = price.split('.');
      return [BigInt(whole + fraction), 10n ** BigInt(fraction.length)];
    };
    fc.assert(
      fc.property(priceArb, priceArb, currencyArb, (a, b, currency) => {
        const [na, da] = asFraction(a);
        const [nb, db] = asFraction(b);
        const [low, high] = na * db <= nb * da ? [a, b] : [b, a];
        return priceToMinorUnits(low, currency) <= priceToMinorUnits(high, currency);
      }),
    );
  });
});

describe('formatMinorUnits', () => {
  it.each([
    [99, 'USD', '0.99'],
    [5, 'USD', '0.05'],
    [0, 'USD', '0.00'],
    [-0, 'USD', '0.00'],
    [120, 'JPY', '120'],
    [-120, 'JPY', '-120'],
    [-1235, 'BHD', '-1.235'],
    [1000, 'BHD', '1.000'],
    [-5, 'USD', '-0.05'],
    [123456789, 'USD', '1234567.89'],
  ])('%i %s is "%s"', (amount, currency, text) => {
    expect(formatMinorUnits(amount, currency)).toBe(text);
  });

  it('takes bigints, including ones beyond Number.MAX_SAFE_INTEGER', () => {
    expect(formatMinorUnits(99n, 'USD')).toBe('0.99');
    expect(formatMinorUnits(-(10n ** 20n) - 1n, 'USD')).toBe('-1000000000000000000.01');
  });

  it('rejects amounts that are not whole minor units', () => {
    expect(codeOf(() => formatMinorUnits(0.5, 'USD'))).toBe('invalid_amount');
    expect(codeOf(() => formatMinorUnits(Number.NaN, 'USD'))).toBe('invalid_amount');
    expect(codeOf(() => formatMinorUnits(2 ** 60, 'USD'))).toBe('invalid_amount');
    expect(codeOf(() => formatMinorUnits(1, 'XYZ'))).toBe('unknown_currency');
  });

  it('property: round trips through priceToMinorUnits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
        currencyArb,
        (amount, currency) => {
          const text = formatMinorUnits(amount, currency);
          const magnitude = text.startsWith('-') ? text.slice(1) : text;
          expect(text.startsWith('-')).toBe(amount < 0);
          expect(priceToMinorUnits(magnitude, currency)).toBe(Math.abs(amount));
          expect(magnitude.split('.')[1]?.length ?? 0).toBe(minorUnitsOf(currency));
        },
      ),
    );
  });
});

describe('DecimalPriceSchema', () => {
  it('accepts decimal prices with up to 12 decimals', () => {
    for (const price of ['0', '0.99', '120', '1.234567890123', '00.5'])
      expect(DecimalPriceSchema.parse(price)).toBe(price);
  });

  it('rejects everything else', () => {
    for (const price of ['', '-1', '1.', '.5', '1e3', '1.2345678901234', ' 1', 0.99]) {
      expect(DecimalPriceSchema.safeParse(price).success).toBe(false);
    }
  });
});
