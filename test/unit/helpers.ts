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
