import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf, errorOf } from './helpers';
import {
  decimalOfNumber,
  decimalPlaces,
  formatDecimal,
  formatFixed,
  isNonNegativeDecimal,
  multiplyDecimal,
  normaliseDecimal,
  parseDecimal,
  readDecimal,
  roundHalfAwayFromZero,
  type Decimal,
} from '../../src/domain/decimal';

/** Any decimal as text, with the units and scale it stands for (leading and trailing zeros kept). */
const decimalText = fc
  .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 20n }), fc.nat(16), fc.nat(2))
  .map(([negative, magnitude, scale, leadingZeros]) => {
    const digits = '0'.repeat(leadingZeros) + magnitude.toString().padStart(scale + 1, '0');
    const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
    return { text: negative ? `-${text}` : text, units: negative ? -magnitude : magnitude, scale };
  });

describe('readDecimal and parseDecimal', () => {
  it.each([
    ['0', 0n, 0],
    ['12.50', 1250n, 2],
    ['-12.50', -1250n, 2],
    ['007.5', 75n, 1],
    ['-0', 0n, 0],
    ['0.000000000001', 1n, 12],
  ])('reads %j', (text, units, scale) => {
    expect(readDecimal(text)).toEqual({ units, scale });
    expect(parseDecimal(text, 'price')).toEqual({ units, scale });
  });

  it.each(['', '.5', '1.', '1e3', '1,5', ' 1', '1 ', '+1', '--1', '0x10', 'NaN', 'Infinity', '١'])(
    'refuses %j',
    (text) => {
      expect(readDecimal(text)).toBeNull();
      expect(codeOf(() => parseDecimal(text, 'multiplier'))).toBe('invalid_decimal');
    },
  );

  it('refuses what is not a string', () => {
    for (const value of [1, null, undefined, 1n, {}]) expect(readDecimal(value)).toBeNull();
  });

  it('names the value in the message and the details', () => {
    const error = errorOf(() => parseDecimal('1,5', 'rate'));
    expect(error.code).toBe('invalid_decimal');
    expect(error.message).toBe('invalid rate "1,5" (expected a decimal such as "1.10")');
  });

  it('reads back what it is given (property)', () => {
    fc.assert(
      fc.property(decimalText, (d) => {
        expect(readDecimal(d.text)).toEqual({ units: d.units, scale: d.scale });
      }),
    );
  });
});

describe('isNonNegativeDecimal', () => {
  it.each(['0', '1.10', '007.5', '123456789012345678901234567890'])('accepts %j', (text) => {
    expect(isNonNegativeDecimal(text)).toBe(true);
  });
  it.each(['-1', '-0', '1.', '.5', '1e3', ' 1', '', 1.1, undefined])('refuses %j', (text) => {
    expect(isNonNegativeDecimal(text)).toBe(false);
  });
});

describe('formatFixed', () => {
  it.each([
    [5n, 2, '0.05'],
    [-1250n, 2, '-12.50'],
    [7n, 0, '7'],
    [0n, 3, '0.000'],
    [-1n, 3, '-0.001'],
    [123456789n, 2, '1234567.89'],
  ])('(%s, %s) is %j', (units, scale, text) => {
    expect(formatFixed(units, scale)).toBe(text);
  });

  it('writes exactly `scale` decimals and reads back to the same value (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.nat(16), (units, scale) => {
        const text = formatFixed(units, scale);
        expect((text.split('.')[1] ?? '').length).toBe(scale);
        expect(readDecimal(text)).toEqual({ units, scale });
      }),
    );
  });
});

describe('formatDecimal and normaliseDecimal', () => {
  it.each([
    [1250n, 3, '1.25'],
    [1000n, 2, '10'],
    [0n, 4, '0'],
    [-5n, 1, '-0.5'],
    [10n, 0, '10'],
  ])('formatDecimal(%s, %s) is %j', (units, scale, text) => {
    expect(formatDecimal(units, scale)).toBe(text);
  });

  it.each([
    ['007.50', '7.5'],
    ['0.000', '0'],
    ['-0.0', '0'],
    ['-00.10', '-0.1'],
    ['100', '100'],
  ])('normaliseDecimal(%j) is %j', (text, normal) => {
    expect(normaliseDecimal(text)).toBe(normal);
  });

  it('is the one normal spelling of the same value (property)', () => {
    fc.assert(
      fc.property(decimalText, (d) => {
        const normal = normaliseDecimal(d.text);
        expect(normal).toMatch(/^-?(0|[1-9]\d*)(\.\d*[1-9])?$/);
        expect(normal).not.toBe('-0');
        const back = readDecimal(normal)!;
        // Same value: back.units / 10^back.scale = d.units / 10^d.scale.
        expect(back.units * 10n ** BigInt(d.scale)).toBe(d.units * 10n ** BigInt(back.scale));
        expect(decimalPlaces(normal)).toBe(back.scale);
      }),
    );
  });
});

describe('multiplyDecimal', () => {
  it('multiplies exactly: 0.99 × 1.10 = 1.089, never 1.0890000000000002', () => {
    expect(multiplyDecimal('0.99', '1.10')).toBe('1.089');
    expect(multiplyDecimal('0.1', '0.2')).toBe('0.02');
  });
});

describe('roundHalfAwayFromZero', () => {
  const at = (text: string) => readDecimal(text)!;

  it.each([
    ['0.995', 2, 100n],
    ['0.994', 2, 99n],
    ['0.985', 2, 99n],
    ['0.125', 2, 13n],
    ['-0.125', 2, -13n],
    ['-0.124', 2, -12n],
    ['2.5', 0, 3n],
    ['-2.5', 0, -3n],
    ['0.4999999999999', 0, 0n],
    ['1.5', 3, 1500n],
    ['7', 2, 700n],
    ['123.456', 0, 123n],
  ])('%s to %s decimals is %s', (text, scale, units) => {
    expect(roundHalfAwayFromZero(at(text), scale)).toBe(units);
  });

  it('is the nearest value, ties away from zero (property)', () => {
    fc.assert(
      fc.property(decimalText, fc.nat(6), (d, scale) => {
        const value: Decimal = { units: d.units, scale: d.scale };
        const rounded = roundHalfAwayFromZero(value, scale);
        // Compare rounded / 10^scale with units / 10^d.scale over the common denominator 10^(scale + d.scale).
        const exact = d.units * 10n ** BigInt(scale);
        const candidate = rounded * 10n ** BigInt(d.scale);
        const half = 10n ** BigInt(d.scale);
        const distance = 2n * (candidate > exact ? candidate - exact : exact - candidate);
        expect(distance <= half).toBe(true);
        if (distance === half)
          expect(candidate < 0n ? -candidate : candidate).toBeGreaterThan(exact < 0n ? -exact : exact);
        // Symmetric: rounding -x is -(rounding x).
        expect(roundHalfAwayFromZero({ units: -d.units, scale: d.scale }, scale)).toBe(-rounded);
      }),
    );
  });
});

describe('decimalOfNumber', () => {
  it.each([
    [0.8, 8n, 1],
    [1, 1n, 0],
    [0.5, 5n, 1],
    [0.123, 123n, 3],
    [1e-7, 1n, 7],
    [2.5e-8, 25n, 9],
  ])('%s is its shortest spelling', (f, units, scale) => {
    expect(decimalOfNumber(f)).toEqual({ units, scale });
  });

  it.each([-0.5, Number.NaN, Number.POSITIVE_INFINITY, 1e21])('refuses %s', (f) => {
    expect(decimalOfNumber(f)).toBeNull();
  });
});
