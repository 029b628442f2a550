/**
 * An error with a stable machine-readable code. Callers (CLI, activities, Temporal failure
 * conversion) branch on `code`; `message` is for humans and may be reworded at any time.
 */
export class ReconError extends Error {
  constructor(
    public readonly code: string,
    message: string,
    public readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ReconError';
  }
}
