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
  missing_option: USER,
  unknown_option: USER,
  unknown_command: USER,
  missing_argument: USER,
  file_exists: USER,
  is_a_directory: USER,
  permission_denied: USER,
  wrong_format: USER,
  missing_columns: USER,
  duplicate_header: USER,
  invalid_cron: USER,
  invalid_catchup: USER,
  unknown_series: USER,
  file_not_found: USER,
  unreadable_file: USER,
  missing_header: USER,
  bad_header: USER,
  unknown_format: USER,
  invalid_field: USER,
  missing_field: USER,
  bad_timestamp: USER,
  timestamp_out_of_range: USER,
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
  price_too_precise: USER,
  invalid_count: USER,
  invalid_alert: USER,
  invalid_multiplier: USER,
  unexpected_multiplier: USER,
  amount_too_large: USER,
  unknown_currency: USER,
  invalid_login: USER,
  login_exists: USER,
  invalid_payload_key: USER,
  payload_key_unknown: USER,
  // A row-level refusal from a file that must be whole (index import refuses the file).
  bad_csv: USER,
  bad_json: USER,
  not_an_object: USER,
  // A malformed object from a record source's API (no id, a modified date that is not a time).
  malformed_object: USER,
  nul_character: USER,
  row_too_large: USER,
  migrate_not_permitted: USER,
  // Tenants, contracts and what they name.
  unknown_tenant: USER,
  wrong_tenant: USER,
  invalid_contract: USER,
  invalid_predicate: USER,
  contract_conflict: USER,
  no_contract_in_effect: USER,
  unknown_source: USER,
  not_a_file_source: USER,
  not_a_pulled_source: USER,
  // A pulled record source (Zendesk, HubSpot): credentials and a changed API stop the night.
  source_auth_failed: USER,
  source_bad_response: BROKEN,
  unknown_outcome_type: USER,
  currency_change: USER,
  outcome_type_in_use: USER,
  occurred_in_future: USER,
  unknown_contract_version: USER,
  // Outcomes and disputes.
  outcome_not_found: USER,
  outcome_ambiguous: USER,
  run_not_found: USER,
  outcome_settled: USER,
  dispute_not_found: USER,
  dispute_closed: USER,
  // Tenant cells (src/cells/): the directory and its cells.
  invalid_cell: USER,
  unknown_cell: USER,
  cell_exists: USER,
  cell_url_has_password: USER,
  cell_url_missing: USER,
  cell_placement_fixed: USER,
  cell_not_permitted: USER,
  tenant_required: USER,
  schema_outdated: USER,
  dispute_not_open: USER,
  dispute_window_closed: USER,
  already_resolved: USER,
  refused: USER,
  // Periods, runs and totals.
  period_not_ended: USER,
  period_not_closed: USER,
  run_in_progress: USER,
  mixed_currencies: USER,
  // Schedules and the local stack.
  schedule_not_found: USER,
  schedule_exists: USER,
  // recon fleet status --night
  invalid_night: USER,
  // recon worker --max-concurrent-activities and friends
  invalid_worker_limit: USER,
  no_stack: USER,
  dev_running: USER,
  // Billing sinks (recon sink).
  unknown_sink: USER,
  batch_not_found: USER,
  batch_not_retryable: USER,
  needs_person: USER,
  // A secret that is not one, a range a sink's read API cannot show.
  invalid_webhook_secret: USER,
  sink_auth_failed: USER,
  sink_history_unavailable: USER,
  // Services that may come back: retried.
  no_worker: FAULT,
  run_timeout: FAULT,
  temporal_unavailable: FAULT,
  temporal_start_failed: FAULT,
  temporal_not_persistent: FAULT,
  temporal_cli_missing: FAULT,
  postgres_start_failed: FAULT,
  claims_http_unreachable: FAULT,
  source_unavailable: FAULT,
  claims_http_status: FAULT,
  claims_http_bad_page: FAULT,
  sink_read_failed: FAULT,
  // Claims from the AI side's PostgreSQL (src/sources/postgres-claims.ts).
  claims_pg_env_missing: USER,
  claims_pg_bad_url: USER,
  claims_pg_login_failed: USER,
  claims_pg_refused: USER,
  claims_pg_relation_missing: USER,
  claims_pg_column_missing: USER,
  claims_pg_bad_keyset: BROKEN,
  claims_pg_unreachable: FAULT,
  claims_pg_query_failed: FAULT,
  // Record sources pulled from an API (src/sources/record-pull.ts, recon source test); the rest above.
  source_rate_limited: FAULT,
  // Billing sinks: Stripe (src/sinks/stripe.ts) when reading back what it holds.
  stripe_unavailable: FAULT,
  stripe_bad_response: FAULT,
  stripe_auth_failed: USER,
  stripe_refused: USER,
  stripe_meter_missing: USER,
  stripe_mock_missing: FAULT,
  import_raced: FAULT,
  database_unavailable: FAULT,
  cell_unavailable: FAULT,
  database_login_failed: FAULT,
  disk_full: FAULT,
  run_failed: FAULT,
  // Rows refer to what does not exist (a tenant, an outcome): the database refused them.
  unknown_reference: USER,
  already_exists: USER,
  // Something of ours is wrong: a retry would only repeat it.
  // Reconcile found the ledger and a sink apart: a finding to act on, which asking again will not change.
  sink_differences: BROKEN,
  payload_corrupt: BROKEN,
  export_mismatch: BROKEN,
  stored_contract_invalid: BROKEN,
  value_out_of_range: BROKEN,
  invalid_data: BROKEN,
  invalid_webhook_message: BROKEN,
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

/** The process exit code for a failure with this code: 2 for the caller's mistakes, 1 for faults. */
export function exitCodeFor(code: string): number {
  return isUserError(code) ? 2 : 1;
}

const ONE_LINE_MAX = 500;

/** Messages reach one terminal line and one log line: the first line, control characters escaped. */
export function oneLine(message: string): string {
  const first =
    String(message)
      .split(/\r?\n/)
      .find((l) => l.trim() !== '') ?? '';
  const clean = first.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
  return clean.length > ONE_LINE_MAX ? `${clean.slice(0, ONE_LINE_MAX)}…` : clean;
}

interface ErrnoLike {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  path?: unknown;
  message?: unknown;
  severity?: unknown;
  table?: unknown;
  constraint?: unknown;
  detail?: unknown;
  issues?: unknown;
  name?: unknown;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** A thrown value's message as text, whatever a foreign thrower put there. */
function messageOf(e: ErrnoLike): string {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- unknown by type, a string in practice
  return String(e.message ?? '');
}

/** A PostgreSQL error (pg's DatabaseError): a five-character SQLSTATE and a severity. */
function isDatabaseError(e: ErrnoLike): boolean {
  return typeof e.code === 'string' && SQLSTATE.test(e.code) && typeof e.severity === 'string';
}

/**
 * A database refusal that a retry may clear: a concurrent writer won a unique or foreign key
 * race, a serialization failure or deadlock, a lock or statement timeout. Activities retry these
 * even though the CLI reports the same SQLSTATEs as the caller's mistake.
 */
export function isRaceOrTimeout(err: unknown): boolean {
  const e = (err ?? {}) as ErrnoLike;
  return (
    typeof err === 'object' &&
    err !== null &&
    isDatabaseError(e) &&
    /^(23505|23503|40...|55P03|57014)$/.test(String(e.code))
  );
}

/**
 * What a person should read for a raw PostgreSQL error. The SQLSTATE, the statement and the
 * server's wording stay out of the message (RECON_DEBUG prints them); the code says what kind
 * of problem it is and the message what to do next.
 */
function fromDatabaseError(e: ErrnoLike): ReconError {
  const state = String(e.code);
  const table = typeof e.table === 'string' ? e.table : undefined;
  const constraint = typeof e.constraint === 'string' ? e.constraint : '';
  const details = { sqlstate: state, table, constraint: constraint || undefined };
  if (state === '23503') {
    if (/tenant/.test(constraint))
      return new ReconError(
        'unknown_tenant',
        'the tenant does not exist (or is not visible to this login): apply its contract with `recon contract apply FILE` first',
        details,
      );
    return new ReconError(
      'unknown_reference',
      `this refers to something that does not exist${table ? ` (in ${table})` : ''}; check the ids given`,
      details,
    );
  }
  if (state === '23505')
    return new ReconError(
      'already_exists',
      `this already exists${table ? ` (in ${table})` : ''}; nothing was changed`,
      details,
    );
  if (state === '42501') {
    // The object, not the statement: "permission denied for table imports" names what was refused.
    const object = /permission denied for (?:table|relation|sequence) ([\w.]+)/.exec(messageOf(e))?.[1];
    return new ReconError(
      'permission_denied',
      `this database login has no permission ${object ? `on ${object}` : 'for that'}; use a login with the right role (see README "Database roles")`,
      details,
    );
  }
  if (state === '28P01' || state === '28000')
    return new ReconError(
      'database_login_failed',
      'the database refused the login; check the user and password in DATABASE_URL',
      details,
    );
  if (state === '3D000')
    return new ReconError(
      'database_unavailable',
      'the database named in DATABASE_URL does not exist; create it or fix DATABASE_URL',
      details,
    );
  if (state.startsWith('08') || state === '57P01' || state === '57P03')
    return new ReconError(
      'database_unavailable',
      'the database connection failed; check that PostgreSQL is running and DATABASE_URL, then try again',
      details,
    );
  if (state === '22003')
    return new ReconError(
      'value_out_of_range',
      `an amount or count is larger than the ledger can hold${table ? ` (in ${table})` : ''}; check the contract's prices and caps`,
      details,
    );
  if (state.startsWith('22') || state === '23514' || state === '23502')
    return new ReconError(
      'invalid_data',
      `the database refused a value${table ? ` for ${table}` : ''}; this is a fault: report it with RECON_DEBUG=1 output`,
      details,
    );
  if (state === '21000')
    return new ReconError(
      'internal_error',
      'a statement matched more rows than it allows; this is a fault: report it with RECON_DEBUG=1 output',
      details,
    );
  if (state === '53100')
    return new ReconError('disk_full', 'the database server is out of disk space; free some and try again', details);
  return new ReconError(
    'internal_error',
    'the database refused the request; this is a fault: report it with RECON_DEBUG=1 output',
    details,
  );
}

/** Node's system errors (fs, net) name a syscall and a path; the message says what to do. */
function fromSystemError(e: ErrnoLike): ReconError | undefined {
  const code = typeof e.code === 'string' ? e.code : '';
  const path = typeof e.path === 'string' ? e.path : undefined;
  const what = path ? `"${path}"` : 'the file';
  const details = { errno: code, syscall: e.syscall, path };
  switch (code) {
    case 'ENOENT':
      return new ReconError('file_not_found', `${what}: no such file or directory`, details);
    case 'EISDIR':
      return new ReconError('is_a_directory', `${what} is a directory; give a file name`, details);
    case 'ENOTDIR':
      return new ReconError('file_not_found', `${what}: a part of the path is not a directory`, details);
    case 'EACCES':
    case 'EPERM':
      return new ReconError('permission_denied', `${what}: permission denied; check the file's permissions`, details);
    case 'EEXIST':
      return new ReconError('file_exists', `${what} already exists`, details);
    case 'ENOSPC':
      return new ReconError('disk_full', `no space left on the device writing ${what}`, details);
    case 'ECONNREFUSED':
    case 'ECONNRESET':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENOTFOUND':
      return new ReconError(
        'database_unavailable',
        `cannot reach the database (${code}); check that PostgreSQL is running and DATABASE_URL, then try again`,
        details,
      );
    default:
      return undefined;
  }
}

/**
 * Any thrown value as a ReconError with a catalogue code and a message for a person: ours as
 * they are, PostgreSQL and Node errors translated, anything else an internal fault. The original
 * is kept as the cause for RECON_DEBUG.
 */
export function toReconError(err: unknown): ReconError {
  if (err instanceof ReconError) return err;
  const e = (err ?? {}) as ErrnoLike;
  let r: ReconError | undefined;
  if (typeof err === 'object' && err !== null) {
    if (isDatabaseError(e)) r = fromDatabaseError(e);
    // Our own errors of other classes (FileRejectedError) carry a catalogue code already.
    else if (err instanceof Error && typeof e.code === 'string' && e.code in ERROR_CATALOGUE)
      r = new ReconError(e.code, err.message);
    else if (typeof e.syscall === 'string' || (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)))
      r = fromSystemError(e);
    // Temporal's gRPC calls (after the connection was made) and pg's own connection failures.
    else if (e.name === 'ServiceError')
      r = new ReconError(
        'temporal_unavailable',
        `Temporal did not answer (${oneLine(messageOf(e))}); check that it is running and TEMPORAL_ADDRESS, then try again`,
      );
    else if (/^(Connection terminated|timeout exceeded when trying to connect)/.test(messageOf(e))) {
      r = new ReconError(
        'database_unavailable',
        'the database connection was lost; check that PostgreSQL is running and DATABASE_URL, then try again',
      );
    } else if (e.name === 'ZodError' && Array.isArray(e.issues)) {
      const i = (e.issues[0] ?? {}) as { path?: unknown[]; message?: string };
      r = new ReconError(
        'invalid_data',
        `a value failed validation: ${(i.path ?? []).join('.') || 'value'}: ${oneLine(i.message ?? '')}`,
      );
    }
  }
  r ??= new ReconError(
    'internal_error',
    `${oneLine(err instanceof Error ? err.message : String(err)) || 'unexpected failure'} (set RECON_DEBUG=1 for details)`,
  );
  (r as Error & { cause?: unknown }).cause = err;
  return r;
}
