/**
 * The ledger: its row type, the idempotency key of every kind of line, its writers and its
 * lookups. Every module that writes or reads ledger lines takes these from here; report queries
 * over many lines keep their SQL beside their caller and type their rows from `LedgerLine`.
 */
export * from './keys';
export * from './rows';
export * from './read';
export * from './write';
