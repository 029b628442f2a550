import { readFileSync } from 'node:fs';
import { ContractSchema, type Contract } from '../../src/domain/contract';

/** The environment variables the Zendesk test contracts name, and what they hold in tests. */
export const ZENDESK_ENV = { ZENDESK_EMAIL: 'admin@example.com', ZENDESK_API_TOKEN: 'zd-test-token-1234' };

export function zendeskFixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/sources/${name}`, import.meta.url), 'utf8'));
}

/**
 * The example contract with its records from Zendesk: the preset's fields only (ticket_id, status,
 * solved_at, updated_at, reopens), success when the ticket is solved or closed and has solved_at.
 */
export function zendeskContract(
  tenant: string,
  source: { apiBase: string; startTime: string; pageSize?: number; fields?: Record<string, unknown> },
): Contract {
  const raw = JSON.parse(readFileSync(new URL('../../examples/contract.acme.json', import.meta.url), 'utf8')) as Record<
    string,
    unknown
  > & { outcomeTypes: { resolved_ticket: Record<string, unknown> } };
  return ContractSchema.parse({
    ...raw,
    tenant,
    recordSources: {
      zendesk: {
        kind: 'zendesk',
        apiBase: source.apiBase,
        auth: { kind: 'api_token', emailEnv: 'ZENDESK_EMAIL', tokenEnv: 'ZENDESK_API_TOKEN' },
        startTime: source.startTime,
        ...(source.pageSize ? { pageSize: source.pageSize } : {}),
        ...(source.fields ? { fields: source.fields } : {}),
      },
    },
    outcomeTypes: {
      resolved_ticket: {
        ...raw.outcomeTypes.resolved_ticket,
        recordSource: 'zendesk',
        success: { all: [{ in: ['status', ['solved', 'closed']] }, { exists: 'solved_at' }] },
      },
    },
  });
}
