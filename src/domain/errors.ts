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

/**
 * How an error is handled. `user`: the caller's mistake (a bad option, file, contract or tenant):
 * the CLI exits 2; otherwise a fault of ours or of a service (exit 1). `permanent`: retrying cannot
 * help, so an activity fails at once (non-retryable) and the run is marked failed with the code.
 */
export interface ErrorSpec {
  user: boolean;
  permanent: boolean;
}

const USER: ErrorSpec = { user: true, permanent: true };
const FAULT: ErrorSpec = { user: false, permanent: false };
const BROKEN: ErrorSpec = { user: false, permanent: true };

/** Every code the product raises. A test fails when code raises one that is not listed here. */
export const ERROR_CATALOGUE = {
  // Options, files and values given by a person.
  bad_input: USER,
  invalid_usage: USER,
  file_not_found: USER,
  unreadable_file: USER,
  missing_header: USER,
  bad_header: USER,
  unknown_format: USER,
  invalid_field: USER,
  missing_field: USER,
  bad_timestamp: USER,
  invalid_date: USER,
  invalid_days: USER,
  invalid_period: USER,
  invalid_time_zone: USER,
  invalid_duration: USER,
  duration_out_of_range: USER,
  bad_range: USER,
  as_of_in_future: USER,
  invalid_amount: USER,
  invalid_decimal: USER,
  invalid_price: USER,
  invalid_count: USER,
  invalid_alert: USER,
  invalid_multiplier: USER,
  unexpected_multiplier: USER,
  amount_too_large: USER,
  unknown_currency: USER,
  invalid_login: USER,
  login_exists: USER,
  invalid_payload_key: USER,
  migrate_not_permitted: USER,
  // Tenants, contracts and what they name.
  unknown_tenant: USER,
  wrong_tenant: USER,
  invalid_contract: USER,
  invalid_predicate: USER,
  contract_conflict: USER,
  no_contract_in_effect: USER,
  unknown_source: USER,
  unknown_outcome_type: USER,
  // Outcomes and disputes.
  outcome_not_found: USER,
  outcome_ambiguous: USER,
  run_not_found: USER,
  outcome_settled: USER,
  dispute_not_found: USER,
  dispute_closed: USER,
  dispute_window_closed: USER,
  already_resolved: USER,
  refused: USER,
  // Schedules and the local stack.
  schedule_not_found: USER,
  schedule_exists: USER,
  no_stack: USER,
  dev_running: USER,
  // Services that may come back: retried.
  no_worker: FAULT,
  run_timeout: FAULT,
  temporal_unavailable: FAULT,
  temporal_start_failed: FAULT,
  temporal_not_persistent: FAULT,
  temporal_cli_missing: FAULT,
  claims_http_unreachable: FAULT,
  claims_http_status: FAULT,
  claims_http_bad_page: FAULT,
  import_raced: FAULT,
  // Something of ours is wrong: a retry would only repeat it.
  payload_corrupt: BROKEN,
  export_mismatch: BROKEN,
  internal_error: FAULT,
} satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The handling of a code; one the catalogue does not know is treated as an internal fault. */
export function errorSpec(code: string): ErrorSpec {
  return (ERROR_CATALOGUE as Record<string, ErrorSpec>)[code] ?? FAULT;
}

export function isPermanentError(code: string): boolean {
  return errorSpec(code).permanent;
}

export function isUserError(code: string): boolean {
  return errorSpec(code).user;
}
