import { NIGHT_STEPS, type NightStep } from '../../workflows/messages';

/**
 * What a test does at each step of a night. The type names every step, so a step added to the
 * workflow fails to compile here until the test says what it does there, or why it does nothing.
 * A step that answers 'stop' ends the night at that point, as a crash would.
 */
export type NightDriver = Record<NightStep, () => Promise<void | 'stop'>>;

/** A step this test has no use for, with the reason kept beside it. */
export function noStep(_why: string): () => Promise<void> {
  return () => Promise.resolve(undefined);
}

/** Runs the driver's steps in the workflow's order; the step the night stopped at, or null. */
export async function driveNight(driver: NightDriver): Promise<NightStep | null> {
  for (const step of NIGHT_STEPS) {
    if ((await driver[step]()) === 'stop') return step;
  }
  return null;
}
