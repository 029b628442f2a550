import { describe, expect, it } from 'vitest';
import { RecordSourceSchema, ZENDESK_TICKET_PRESET, ClaimSourceSchema } from '../../src/domain/sources';
import { rateLimitWaitMs } from '../../src/sources/record-pull';

const zendesk = {
  kind: 'zendesk',
  apiBase: 'https://acme.zendesk.com/',
  auth: { kind: 'api_token', emailEnv: 'ZENDESK_EMAIL', tokenEnv: 'ZENDESK_API_TOKEN' },
  startTime: '2026-01-01T00:00:00Z',
};

describe('record sources by kind', () => {
  it('a file source is written as before, without a kind', () => {
    const s = RecordSourceSchema.parse({ format: 'csv', idField: 'id', fields: { id: { column: 'ID' } } });
    expect(s).toEqual({ format: 'csv', idField: 'id', fields: { id: { column: 'ID', type: 'string' } } });
  });

  it('a Zendesk source needs no mapping: the preset fills it, and filling it again changes nothing', () => {
    const once = RecordSourceSchema.parse(zendesk);
    expect(once).toMatchObject({
      idField: 'ticket_id',
      updatedAtField: 'updated_at',
      apiBase: 'https://acme.zendesk.com',
    });
    expect(once.fields).toEqual(ZENDESK_TICKET_PRESET);
    expect(RecordSourceSchema.parse(JSON.parse(JSON.stringify(once)))).toEqual(once);
  });

  it('custom fields add to the preset or replace one of its fields', () => {
    const s = RecordSourceSchema.parse({
      ...zendesk,
      fields: {
        csat: { column: 'satisfaction_rating.score' },
        solved_at: { column: 'custom.solved', type: 'timestamp' },
      },
    });
    expect(s.fields.csat).toEqual({ column: 'satisfaction_rating.score', type: 'string' });
    expect(s.fields.solved_at.column).toBe('custom.solved');
    expect(s.fields.ticket_id.column).toBe('id');
  });

  it('a HubSpot deal source maps the stage and the date its success stage was entered', () => {
    const s = RecordSourceSchema.parse({
      kind: 'hubspot',
      objectType: 'deals',
      successStage: 'closedwon',
      tokenEnv: 'HUBSPOT_TOKEN',
      startTime: '2026-01-01T00:00:00Z',
    });
    expect(s.idField).toBe('deal_id');
    expect(s.fields.stage_entered_at).toEqual({ column: 'properties.hs_v2_date_entered_closedwon', type: 'timestamp' });
    expect(s.fields.updated_at.column).toBe('properties.hs_lastmodifieddate');
  });

  it('names what is wrong: an unknown kind, a secret written instead of its variable', () => {
    expect(RecordSourceSchema.safeParse({ kind: 'freshdesk' }).error?.issues[0].path).toEqual(['kind']);
    const secret = RecordSourceSchema.safeParse({ ...zendesk, auth: { kind: 'oauth', tokenEnv: 'abc123secret' } });
    expect(secret.error?.issues[0].message).toMatch(/environment variable/);
  });

  it('a postgres claim source reads a plain relation by keyset, with defaults', () => {
    expect(ClaimSourceSchema.parse({ kind: 'postgres', urlEnv: 'AI_DB_URL', relation: 'outcome_claims' })).toEqual({
      kind: 'postgres',
      urlEnv: 'AI_DB_URL',
      schema: 'public',
      relation: 'outcome_claims',
      updatedAtColumn: 'updated_at',
      idColumn: 'claim_id',
      pageSize: 1000,
      pagesPerChunk: 20,
    });
    expect(ClaimSourceSchema.safeParse({ kind: 'postgres', urlEnv: 'X', relation: 'a; drop table x' }).success).toBe(
      false,
    );
  });
});

describe('the rate limit window', () => {
  const limit = { requests: 10, perMs: 60_000 };
  const start = new Date('2026-11-01T00:00:00Z');
  const at = (ms: number) => new Date(start.getTime() + ms);

  it('has room until the budget is spent, then says how long until the window turns', () => {
    expect(rateLimitWaitMs({ startedAt: null, requests: 0 }, limit, start)).toBe(0);
    expect(rateLimitWaitMs({ startedAt: start, requests: 9 }, limit, at(1_000))).toBe(0);
    expect(rateLimitWaitMs({ startedAt: start, requests: 10 }, limit, at(15_000))).toBe(45_000);
    expect(rateLimitWaitMs({ startedAt: start, requests: 10 }, limit, at(60_000))).toBe(0);
  });

  it('a window that starts in the future (a clock moved back) does not block', () => {
    expect(rateLimitWaitMs({ startedAt: start, requests: 10 }, limit, at(-5_000))).toBe(0);
  });
});
