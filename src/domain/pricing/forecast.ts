import { ReconError } from '../errors';
import { checkUsage, type PeriodUsage, type Pricing } from './schema';
import { baseFeeMinor, priceRuns, resolve, safeAdd, type Resolved } from './tiers';

/**
 * round(count × days / elapsed), half up: the projected count after `days` days. Exact (BigInt)
 * when the days are whole numbers; with fractional days (elapsed time measured in ms) it is
 * the same formula in floating point, which is deterministic and far from the money.
 */
function countAfterDays(count: number, days: number, elapsed: number): number {
  if (Number.isInteger(days) && Number.isInteger(elapsed)) {
    return Number((2n * BigInt(count) * BigInt(days) + BigInt(elapsed)) / (2n * BigInt(elapsed)));
  }
  return Math.floor((2 * count * days + elapsed) / (2 * elapsed));
}

/** The first whole day d >= 1 with countAfterDays(count, d, elapsed) >= position, i.e. d >= elapsed(2·position - 1) / (2·count). */
function dayReaching(position: number, count: number, elapsed: number): number {
  if (Number.isInteger(elapsed)) {
    const numerator = BigInt(elapsed) * BigInt(2 * position - 1);
    const denominator = 2n * BigInt(count);
    return Math.max(1, Number((numerator + denominator - 1n) / denominator));
  }
  let day = Math.max(1, Math.ceil((elapsed * (2 * position - 1)) / (2 * count)));
  // Settle floating point doubt with the very formula the projection uses.
  while (day > 1 && countAfterDays(count, day - 1, elapsed) >= position) day--;
  while (countAfterDays(count, day, elapsed) < position) day++;
  return day;
}

function capReachedIn(p: Resolved, u: PeriodUsage): boolean {
  if (!p.cap) return false;
  if (u.capped > 0) return true;
  if (p.cap.kind === 'count') return p.cap.count > 0 && u.count >= p.cap.count;
  return p.cap.minor > 0 && u.usageMinor >= p.cap.minor;
}

/**
 * The position at which the cap is reached (count or usage at the cap, or the first capped
 * outcome) when pricing `count` outcomes from `from`, or null when it is not reached.
 */
function capReachPosition(p: Resolved, from: PeriodUsage, count: number): number | null {
  if (!p.cap) return null;
  if (p.cap.kind === 'count') {
    const position = Math.max(p.cap.count, 1);
    return position <= from.count + count ? position : null;
  }
  let usage: PeriodUsage = { ...from };
  for (const run of priceRuns(p, from, count).runs) {
    if (run.basis === 'capped') return run.from;
    if (run.basis === 'tier' && run.amountMinor > 0 && p.cap.minor > 0) {
      const room = p.cap.minor - usage.usageMinor;
      const needed = room > 0 ? Number((BigInt(room) + BigInt(run.amountMinor) - 1n) / BigInt(run.amountMinor)) : 0;
      if (needed >= 1 && needed <= run.n) return run.from + needed - 1;
    }
    usage = {
      count: usage.count + run.n,
      usageMinor: usage.usageMinor + run.n * run.amountMinor,
      capped: usage.capped,
    };
  }
  return null;
}

/**
 * Run-rate forecast for one outcome type in one period. The daily rate is
 * usageSoFar.count / daysElapsed; the projected count at day d is round(rate × d) (half up;
 * exact for whole days, floating point when the caller measures days fractionally, e.g. elapsed
 * milliseconds / 86 400 000 or a 30.96-day DST month), so the period-end count is
 * round(rate × daysInPeriod). The outcomes still to come are
 * priced with the same engine, from usageSoFar. capReachedOnDay is the first day d (1-based) on
 * which the projected count reaches the cap position (for a count cap the cap count, for an
 * amount cap the outcome that brings usage to the cap or is the first one capped); null
 * without a cap or when it is not reached by the end of the period (the last day is
 * ceil(daysInPeriod)). It is consistent with projectedCount: the cap is reached on some day
 * exactly when the projection reaches it. When usageSoFar already
 * reached the cap it is the run-rate estimate of that day (<= daysElapsed); for an amount cap
 * the position is then estimated by repricing the period from empty with this pricing and
 * multiplier. `multiplier` is the price index multiplier to project with (see priceNextOutcomes).
 * daysElapsed 0: no projection beyond usage so far (and a cap already reached gives day 1).
 * projectedTotalMinor adds the base fee when `baseFee` is true.
 */
export function projectPeriod(
  pricing: Pricing,
  currency: string,
  args: { usageSoFar: PeriodUsage; daysElapsed: number; daysInPeriod: number; baseFee: boolean; multiplier?: string },
): {
  projectedCount: number;
  projectedUsageMinor: number;
  projectedTotalMinor: number;
  capReachedOnDay: number | null;
} {
  const { usageSoFar, daysElapsed, daysInPeriod } = args;
  checkUsage(usageSoFar, 'usageSoFar');
  if (typeof daysInPeriod !== 'number' || !Number.isFinite(daysInPeriod) || daysInPeriod <= 0) {
    throw new ReconError('invalid_days', `daysInPeriod must be a positive number of days, got ${daysInPeriod}`, {
      daysInPeriod,
    });
  }
  if (
    typeof daysElapsed !== 'number' ||
    !Number.isFinite(daysElapsed) ||
    daysElapsed < 0 ||
    daysElapsed > daysInPeriod
  ) {
    throw new ReconError(
      'invalid_days',
      `daysElapsed must be from 0 to daysInPeriod (${daysInPeriod}), got ${daysElapsed}`,
      {
        daysElapsed,
        daysInPeriod,
      },
    );
  }
  const p = resolve(pricing, currency, args.multiplier);
  const fee = args.baseFee ? baseFeeMinor(pricing, currency) : 0;
  const c = usageSoFar.count;

  const projectedCount = daysElapsed === 0 ? c : Math.max(c, countAfterDays(c, daysInPeriod, daysElapsed));
  const { after } = priceRuns(p, usageSoFar, projectedCount - c);

  let capReachedOnDay: number | null = null;
  if (p.cap) {
    let position: number | null;
    if (capReachedIn(p, usageSoFar)) {
      position =
        p.cap.kind === 'count'
          ? Math.max(1, Math.min(p.cap.count, c))
          : (capReachPosition(p, { count: 0, usageMinor: 0, capped: 0 }, c) ?? c);
      position = Math.max(1, Math.min(position, c));
    } else {
      position = capReachPosition(p, usageSoFar, projectedCount - c);
    }
    if (position !== null && c > 0) {
      if (daysElapsed === 0) {
        capReachedOnDay = position <= c ? 1 : null;
      } else {
        const day = dayReaching(position, c, daysElapsed);
        capReachedOnDay = day <= Math.ceil(daysInPeriod) ? day : null;
      }
    }
  }

  return {
    projectedCount,
    projectedUsageMinor: after.usageMinor,
    projectedTotalMinor: safeAdd(after.usageMinor, fee),
    capReachedOnDay,
  };
}
