import { ReconError } from '../../src/domain/errors';

/** The stable code a call fails with, undefined when it does not throw. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof ReconError ? error.code : `not a ReconError: ${String(error)}`;
  }
  return undefined;
}

/** The ReconError a call throws; anything else (or nothing) fails the test. */
export function errorOf(fn: () => unknown): ReconError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ReconError) return error;
    throw error;
  }
  throw new Error('expected a ReconError');
}
