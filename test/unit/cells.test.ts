import { describe, expect, it } from 'vitest';
import {
  CellNameOrDefault,
  CellNameSchema,
  cellTaskQueue,
  cellUnavailable,
  checkStorableUrl,
  databaseWhere,
  redactDatabaseUrl,
  resolveCellUrl,
} from '../../src/domain/cells';
import { ReconError } from '../../src/domain/errors';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as ReconError).code;
  }
};

describe('cell names and queues', () => {
  it('accepts short lower-case names and keeps "default" for the database DATABASE_URL names', () => {
    expect(CellNameSchema.safeParse('eu-2').success).toBe(true);
    expect(CellNameSchema.safeParse('EU').success).toBe(false);
    expect(CellNameSchema.safeParse('2eu').success).toBe(false);
    expect(CellNameSchema.safeParse('x'.repeat(41)).success).toBe(false);
    expect(CellNameSchema.safeParse('default').success).toBe(false);
    expect(CellNameOrDefault.safeParse('default').success).toBe(true);
  });

  it("names a cell's queue after the default queue", () => {
    expect(cellTaskQueue('outcome-recon', 'eu-2')).toBe('outcome-recon-eu-2');
  });
});

describe('cell URLs', () => {
  it('never shows a password', () => {
    expect(redactDatabaseUrl('postgres://recon:s3cr3t@db-2:5432/recon')).toBe('postgres://recon:***@db-2:5432/recon');
    expect(redactDatabaseUrl('postgres://recon@db-2/recon')).toBe('postgres://recon@db-2/recon');
  });

  it('stores a password only for a server on this machine', () => {
    expect(codeOf(() => checkStorableUrl('postgres://recon@db-2/recon'))).toBeUndefined();
    expect(codeOf(() => checkStorableUrl('postgres://recon:pw@127.0.0.1:5433/recon'))).toBeUndefined();
    expect(codeOf(() => checkStorableUrl('postgresql://recon:pw@localhost/recon'))).toBeUndefined();
    expect(codeOf(() => checkStorableUrl('postgres://recon:pw@db-2/recon'))).toBe('cell_url_has_password');
    expect(codeOf(() => checkStorableUrl('mysql://db-2/recon'))).toBe('invalid_cell');
    expect(codeOf(() => checkStorableUrl('db-2:5432'))).toBe('invalid_cell');
  });

  it("reads the URL from the directory, the variable it names, or the default cell's server", () => {
    const home = 'postgres://recon:pw@127.0.0.1:5432/recon?sslmode=disable';
    const viaEnv = { name: 'b', databaseUrl: null, databaseUrlEnv: 'CELL_B_URL', databaseName: null, taskQueue: 'q-b' };
    expect(resolveCellUrl(viaEnv, { CELL_B_URL: 'postgres://x@h/d' }, home)).toEqual({
      name: 'b',
      databaseUrl: 'postgres://x@h/d',
      taskQueue: 'q-b',
      urlFrom: '$CELL_B_URL',
    });
    expect(() => resolveCellUrl(viaEnv, {}, home)).toThrow(/\$CELL_B_URL, which is not set in this process/);
    const stored = {
      name: 'c',
      databaseUrl: 'postgres://x@h/c',
      databaseUrlEnv: null,
      databaseName: null,
      taskQueue: 'q',
    };
    expect(resolveCellUrl(stored, {}, home).urlFrom).toBe('the directory');
    // The local stack's port changes at each start: a sibling database follows the default cell.
    const sibling = { name: 'eu', databaseUrl: null, databaseUrlEnv: null, databaseName: 'recon_eu', taskQueue: 'q' };
    expect(resolveCellUrl(sibling, {}, home).databaseUrl).toBe(
      'postgres://recon:pw@127.0.0.1:5432/recon_eu?sslmode=disable',
    );
    expect(databaseWhere('postgres://recon:pw@db-2:6432/recon_eu')).toBe('db-2:6432/recon_eu');
  });

  it("words an outage as the cell's, with the URL redacted and one line", () => {
    const e = cellUnavailable(
      { name: 'b', databaseUrl: 'postgres://recon:pw@db-2/recon', taskQueue: 'q', urlFrom: '$B' },
      new Error('connect ECONNREFUSED 10.0.0.2:5432\n    at stack'),
    );
    expect(e.code).toBe('cell_unavailable');
    expect(e.message).toBe(
      'cell "b" (postgres://recon:***@db-2/recon, from $B) does not answer: connect ECONNREFUSED 10.0.0.2:5432; its tenants wait until it is back, other cells are not affected',
    );
  });
});
