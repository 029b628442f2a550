import pg from 'pg';

// bigint columns (ids, amounts) come back as JS numbers: every value we store is far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export function createPool(connectionString: string, max = 5): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'outcome-recon',
  });
  // Without this handler an idle client's network error would crash the whole process.
  pool.on('error', (err) => {
    console.error(`[db] idle connection error: ${err.message}`);
  });
  // The pool listens for errors only on idle clients: a connection dropped while checked out
  // (terminated backend, server restart mid-transaction) would emit an unhandled 'error' and kill
  // the worker. The query in flight fails on its own; the pool discards the broken client on release.
  pool.on('connect', (client) => {
    client.on('error', (err) => {
      console.error(`[db] connection lost while in use: ${err.message}`);
    });
  });
  return pool;
}

export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  begin = 'begin',
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
