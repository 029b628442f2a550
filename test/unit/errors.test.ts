import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ERROR_CATALOGUE,
  ReconError,
  exitCodeFor,
  isPermanentError,
  isRaceOrTimeout,
  isUserError,
  oneLine,
  toReconError,
} from '../../src/domain/errors';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return /\.(ts|mts|mjs)$/.test(name) ? [full] : [];
  });
}

/** Every code raised in the product: ReconError and FileRejectedError codes, ApplicationFailure types. */
function raisedCodes(): Map<string, string> {
  const found = new Map<string, string>();
  const patterns = [
    /\b(?:ReconError|FileRejectedError)\(\s*'([a-z_]+)'/g,
    /ApplicationFailure\.create\(\{\s*type:\s*'([a-z_]+)'/g,
    /\brejected\(\s*'([a-z_]+)'/g,
  ];
  for (const dir of ['src', 'activities', 'workflows']) {
    for (const file of sourceFiles(path.join(ROOT, dir))) {
      const text = readFileSync(file, 'utf8');
      for (const pattern of patterns) {
        for (const m of text.matchAll(pattern)) if (!found.has(m[1])) found.set(m[1], path.relative(ROOT, file));
      }
    }
  }
  return found;
}

describe('the error catalogue', () => {
  it('lists every code the product raises', () => {
    const codes = raisedCodes();
    // The scan itself must see the codes it is meant to check (a broken pattern passes vacuously).
    expect(codes.size).toBeGreaterThan(40);
    expect(codes.has('duplicate_header')).toBe(true);
    const missing = [...codes]
      .filter(([code]) => !(code in ERROR_CATALOGUE))
      .map(([code, file]) => `${code} (${file})`);
    expect(missing).toEqual([]);
  });

  it('says who caused an error and whether a retry can help', () => {
    expect(isUserError('unknown_tenant')).toBe(true);
    expect(isPermanentError('unknown_tenant')).toBe(true);
    expect(isUserError('temporal_unavailable')).toBe(false);
    expect(isPermanentError('temporal_unavailable')).toBe(false);
    expect(isPermanentError('value_out_of_range')).toBe(true);
    expect(isUserError('value_out_of_range')).toBe(false);
    expect(exitCodeFor('missing_option')).toBe(2);
    expect(exitCodeFor('internal_error')).toBe(1);
    // A code nobody listed is a fault of ours, retried like one.
    expect(exitCodeFor('no_such_code')).toBe(1);
    expect(isPermanentError('no_such_code')).toBe(false);
  });
});

describe('errors from below become catalogue errors', () => {
  const pg = (code: string, extra: object = {}) =>
    Object.assign(new Error('insert or update on table "x" violates foreign key constraint'), {
      code,
      severity: 'ERROR',
      ...extra,
    });

  it('translates SQLSTATEs without showing them', () => {
    const cases: Array<[object, string]> = [
      [pg('23503', { constraint: 'imports_tenant_id_fkey', table: 'imports' }), 'unknown_tenant'],
      [pg('23503', { constraint: 'disputes_outcome_id_fkey', table: 'disputes' }), 'unknown_reference'],
      [pg('42501'), 'permission_denied'],
      [pg('21000'), 'internal_error'],
      [pg('22003', { table: 'ledger_entries' }), 'value_out_of_range'],
      [pg('08006'), 'database_unavailable'],
      [pg('28P01'), 'database_login_failed'],
    ];
    for (const [err, code] of cases) {
      const r = toReconError(err);
      expect(r.code).toBe(code);
      expect(r.message).not.toMatch(/\b(23503|42501|21000|22003|08006|28P01)\b/);
      expect(r.message).not.toMatch(/violates/);
    }
  });

  it('tells races and timeouts (retried in activities) from deterministic refusals', () => {
    expect(['23505', '23503', '40001', '40P01', '55P03', '57014'].map((c) => isRaceOrTimeout(pg(c)))).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(['22003', '23514', '42501', '21000'].map((c) => isRaceOrTimeout(pg(c)))).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect(isRaceOrTimeout(new Error('x'))).toBe(false);
  });

  it('translates Node errors with the path', () => {
    const sys = (code: string) =>
      Object.assign(new Error(`${code}: illegal operation`), { code, syscall: 'open', path: '/tmp/out' });
    expect(toReconError(sys('EISDIR'))).toMatchObject({
      code: 'is_a_directory',
      message: '"/tmp/out" is a directory; give a file name',
    });
    expect(toReconError(sys('ENOENT')).code).toBe('file_not_found');
    expect(toReconError(sys('EACCES')).code).toBe('permission_denied');
    expect(
      toReconError(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect' }),
      ).code,
    ).toBe('database_unavailable');
  });

  it('translates lost connections to the services', () => {
    expect(toReconError(new Error('Connection terminated unexpectedly')).code).toBe('database_unavailable');
    expect(
      toReconError(Object.assign(new Error('14 UNAVAILABLE: connection refused'), { name: 'ServiceError' })).code,
    ).toBe('temporal_unavailable');
  });

  it('keeps ours and makes anything else an internal fault in one line', () => {
    const ours = new ReconError('unknown_tenant', 'x');
    expect(toReconError(ours)).toBe(ours);
    const r = toReconError(new TypeError('cannot read x\n    at foo (bar.ts:1:1)'));
    expect(r.code).toBe('internal_error');
    expect(r.message).toBe('cannot read x (set RECON_DEBUG=1 for details)');
    expect(oneLine('\n first \n second')).toBe('first');
  });
});
