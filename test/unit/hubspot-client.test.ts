import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RecordSourceSchema, type HubspotSourceConfig } from '../../src/domain/sources';
import { mapRecordRow } from '../../src/ingest/record-row';
import {
  HUBSPOT_SEARCH_INDEX_LAG_MS,
  HUBSPOT_SEARCH_RESULT_CAP,
  advanceCursor,
  firstCursor,
  flattenObject,
  hubspotClient,
  parseSearchAnswer,
  readCursor,
  requestedProperties,
  retryAfterMs,
  searchRequest,
  type HubspotCursor,
  type ParsedObject,
} from '../../src/sources/hubspot';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/sources/${name}`, import.meta.url), 'utf8'));

function source(over: Record<string, unknown> = {}): HubspotSourceConfig {
  return RecordSourceSchema.parse({
    kind: 'hubspot',
    objectType: 'deals',
    successStage: 'closedwon',
    tokenEnv: 'HUBSPOT_TOKEN',
    apiBase: 'https://api.hubapi.com',
    startTime: '2026-01-01T00:00:00Z',
    ...over,
  }) as HubspotSourceConfig;
}

const deals = source({ pageSize: 100, fields: { owner: { column: 'properties.hubspot_owner_id' } } });
const contacts = source({ objectType: 'contacts', successStage: 'customer' });
const NOW = new Date('2026-06-01T00:00:00Z');

/** A taken object at a modified time (the cursor logic needs only these two). */
const at = (id: string, modifiedAt: string): ParsedObject => ({
  id,
  modifiedAt,
  item: { ok: true, values: { id }, raw: '{}' },
});
const iso = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();

describe('HubSpot search request', () => {
  it('filters GTE the anchor on the modified property, sorted ascending, with every mapped property', () => {
    expect(searchRequest(deals, firstCursor(deals))).toEqual({
      filterGroups: [
        {
          filters: [
            { propertyName: 'hs_lastmodifieddate', operator: 'GTE', value: String(Date.parse('2026-01-01T00:00:00Z')) },
          ],
        },
      ],
      sorts: [{ propertyName: 'hs_lastmodifieddate', direction: 'ASCENDING' }],
      properties: [
        'amount',
        'dealstage',
        'hs_lastmodifieddate',
        'hs_v2_date_entered_closedwon',
        'hubspot_owner_id',
        'pipeline',
      ],
      limit: 100,
    });
  });

  it('uses lastmodifieddate for contacts, the default page size of 200, and the paging token', () => {
    const body = searchRequest(contacts, { ...firstCursor(contacts), after: '400', read: 400 });
    expect(body.limit).toBe(200);
    expect(body.after).toBe('400');
    expect(body.sorts).toEqual([{ propertyName: 'lastmodifieddate', direction: 'ASCENDING' }]);
    expect(requestedProperties(contacts)).toEqual([
      'email',
      'hs_v2_date_entered_customer',
      'lastmodifieddate',
      'lifecyclestage',
    ]);
  });

  it('reads a crowded instant by object id, and after it strictly later times', () => {
    const c = firstCursor(deals);
    const tie = searchRequest(deals, { ...c, tie: { lastId: '77' } });
    expect(tie.filterGroups).toEqual([
      {
        filters: [
          { propertyName: 'hs_lastmodifieddate', operator: 'EQ', value: String(Date.parse(c.anchor)) },
          { propertyName: 'hs_object_id', operator: 'GT', value: '77' },
        ],
      },
    ]);
    expect(tie.sorts).toEqual([{ propertyName: 'hs_object_id', direction: 'ASCENDING' }]);
    expect(tie.after).toBeUndefined();
    const strict = searchRequest(deals, { ...c, strict: true });
    expect((strict.filterGroups as Array<{ filters: Array<{ operator: string }> }>)[0].filters[0].operator).toBe('GT');
  });

  it('keeps HubSpot search rate limit: five a second', () => {
    expect(hubspotClient.rateLimit(deals)).toEqual({ requests: 5, perMs: 1000 });
    expect(HUBSPOT_SEARCH_RESULT_CAP).toBe(10_000);
  });
});

describe('HubSpot answers', () => {
  it('flattens a documented search answer and maps it through the deals preset', () => {
    const parsed = parseSearchAnswer(fixture('hubspot-deals-search.json'));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.answer.paging?.next?.after).toBe('2');
    const [won, open] = parsed.answer.results.map((r) => flattenObject(r, deals));
    expect(won.item.ok).toBe(true);
    if (!won.item.ok || !open.item.ok) throw new Error('expected good objects');
    expect(won.item.values).toMatchObject({
      id: '18340551',
      createdAt: '2026-03-02T09:14:07.481Z',
      archived: false,
      'properties.dealstage': 'closedwon',
      'properties.amount': '1500.00',
    });
    expect(won.modifiedAt).toBe('2026-03-09T16:02:11.903Z');
    const mapped = mapRecordRow(won.item.values, deals, {
      timeZone: 'UTC',
      matchField: 'deal_id',
      caseInsensitive: false,
    });
    expect(mapped.externalId).toBe('18340551');
    expect(mapped.updatedAt).toBe('2026-03-09T16:02:11.903Z');
    expect(mapped.data).toMatchObject({
      deal_id: '18340551',
      stage: 'closedwon',
      pipeline: 'default',
      amount: 1500,
      updated_at: '2026-03-09T16:02:11.903Z',
      stage_entered_at: '2026-03-09T16:02:10.117Z',
      owner: null,
    });
    const openMapped = mapRecordRow(open.item.values, deals, {
      timeZone: 'UTC',
      matchField: 'deal_id',
      caseInsensitive: false,
    });
    expect(openMapped.data).toMatchObject({ stage: 'appointmentscheduled', amount: null, stage_entered_at: null });
  });

  it('maps a contact through the contacts preset (lifecycle stage, stage-entered time)', () => {
    const parsed = parseSearchAnswer(fixture('hubspot-contacts-search-last.json'));
    if (!parsed.ok) throw new Error(parsed.error);
    expect(parsed.answer.paging).toBeUndefined();
    const o = flattenObject(parsed.answer.results[0], contacts);
    if (!o.item.ok) throw new Error(o.item.reason);
    const mapped = mapRecordRow(o.item.values, contacts, {
      timeZone: 'UTC',
      matchField: 'email',
      caseInsensitive: true,
    });
    expect(mapped.externalId).toBe('100451');
    expect(mapped.matchKey).toBe('testperson@example.com');
    expect(mapped.data).toMatchObject({ lifecycle_stage: 'customer', stage_entered_at: '2026-02-11T13:27:39.356Z' });
  });

  it('refuses an answer that is not the documented shape', () => {
    const r = parseSearchAnswer({ items: [], total: 0 });
    expect(r).toEqual({ ok: false, error: expect.stringContaining('results') });
    expect(parseSearchAnswer({ total: 1, results: [], paging: { next: { after: 5 } } }).ok).toBe(false);
  });

  it('quarantines a malformed object with its id and reason', () => {
    const noId = flattenObject({ properties: {}, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString() }, deals);
    expect(noId.item).toMatchObject({
      ok: false,
      id: null,
      code: 'malformed_object',
      reason: expect.stringContaining('id'),
    });
    const badDate = flattenObject(
      {
        id: '9',
        properties: { hs_lastmodifieddate: 'yesterday' },
        createdAt: NOW.toISOString(),
        updatedAt: NOW.toISOString(),
      },
      deals,
    );
    expect(badDate.item).toMatchObject({
      ok: false,
      id: '9',
      code: 'malformed_object',
      reason: expect.stringContaining('hs_lastmodifieddate is not a time'),
    });
    expect(badDate.modifiedAt).toBeNull();
  });

  it('reads Retry-After in seconds, as an HTTP date, or waits out the secondly window', () => {
    expect(retryAfterMs('2', NOW)).toBe(2000);
    expect(retryAfterMs(new Date(NOW.getTime() + 3000).toUTCString(), NOW)).toBe(3000);
    expect(retryAfterMs(null, NOW)).toBe(1000);
  });

  it('reads a saved cursor back, and refuses one that is not a HubSpot cursor', () => {
    const c = firstCursor(deals);
    expect(readCursor(deals, null)).toEqual(c);
    expect(readCursor(deals, JSON.parse(JSON.stringify(c)))).toEqual(c);
    expect(readCursor(deals, { after_cursor: 'x' })).toBeNull();
  });
});

describe('HubSpot cursor: paging, the result cap and re-anchoring', () => {
  const opts = { pageSize: 3, cap: 10, now: NOW };
  const start: HubspotCursor = {
    anchor: iso(0),
    after: null,
    read: 0,
    seenAtAnchor: [],
    newest: iso(0),
    newestIds: [],
  };

  it('pages with after while the next page stays within the cap', () => {
    const r = advanceCursor(start, [at('1', iso(1)), at('2', iso(2)), at('3', iso(2))], '3', opts);
    expect(r.done).toBe(false);
    expect(r.drop.size).toBe(0);
    expect(r.next).toEqual({ ...start, after: '3', read: 3, newest: iso(2), newestIds: ['2', '3'] });
  });

  it('ends the search at an empty page even when it offers a next one', () => {
    const r = advanceCursor(start, [], '3', opts);
    expect(r.done).toBe(true);
    expect(r.next).toMatchObject({ anchor: iso(0), after: null });
  });

  it('re-anchors on the newest time reached before paging past the cap, remembering the ids at it', () => {
    const c: HubspotCursor = { ...start, after: '6', read: 6, newest: iso(4), newestIds: ['6'] };
    // 9 read: a page of 3 more would reach result 12 > 10.
    const r = advanceCursor(c, [at('7', iso(5)), at('8', iso(6)), at('9', iso(6))], '9', opts);
    expect(r.done).toBe(false);
    expect(r.next).toEqual({
      anchor: iso(6),
      after: null,
      read: 0,
      seenAtAnchor: ['8', '9'],
      newest: iso(6),
      newestIds: ['8', '9'],
    });
  });

  it('drops the objects already taken at the anchor when the new search returns them again', () => {
    const c: HubspotCursor = {
      anchor: iso(6),
      after: null,
      read: 0,
      seenAtAnchor: ['8', '9'],
      newest: iso(6),
      newestIds: ['8', '9'],
    };
    const r = advanceCursor(c, [at('8', iso(6)), at('9', iso(6)), at('10', iso(6))], '3', opts);
    expect([...r.drop]).toEqual([0, 1]);
    expect(r.next.newestIds).toEqual(['8', '9', '10']);
    // Modified again since: no longer at the anchor, so it is new and kept.
    const again = advanceCursor(c, [at('8', iso(7))], null, opts);
    expect(again.drop.size).toBe(0);
  });

  it('reads a crowded instant by id when a whole search shares the anchor, then goes on strictly after it', () => {
    const c: HubspotCursor = {
      ...start,
      after: '6',
      read: 6,
      newest: iso(0),
      newestIds: ['1', '2', '3', '4', '5', '6'],
    };
    const r = advanceCursor(c, [at('7', iso(0)), at('8', iso(0)), at('9', iso(0))], '9', opts);
    expect(r.next.tie).toEqual({ lastId: null });
    expect(r.next.anchor).toBe(iso(0));
    const t1 = advanceCursor(r.next, [at('1', iso(0)), at('2', iso(0)), at('3', iso(0))], '3', opts);
    expect(t1.next.tie).toEqual({ lastId: '3' });
    expect(t1.done).toBe(false);
    const t2 = advanceCursor(t1.next, [at('4', iso(0))], null, opts);
    expect(t2.done).toBe(false);
    expect(t2.next).toMatchObject({ anchor: iso(0), strict: true, after: null, read: 0 });
    expect(t2.next.tie).toBeUndefined();
    // Nothing later: the window ends, still strictly after the crowded instant.
    const end = advanceCursor(t2.next, [], null, opts);
    expect(end.done).toBe(true);
    expect(end.next).toMatchObject({ anchor: iso(0), strict: true });
  });

  it('ends the window on the last page at the newest time taken, or a minute before now when newer', () => {
    const r = advanceCursor(start, [at('1', iso(1)), at('2', iso(3))], null, opts);
    expect(r.done).toBe(true);
    expect(r.next).toEqual({
      anchor: iso(3),
      after: null,
      read: 0,
      seenAtAnchor: ['2'],
      newest: iso(3),
      newestIds: ['2'],
    });
    const now = new Date(Date.parse(iso(3)) + HUBSPOT_SEARCH_INDEX_LAG_MS / 2);
    const recent = advanceCursor(start, [at('1', iso(1)), at('2', iso(3))], null, { ...opts, now });
    // HubSpot's search index may not show the last moments yet: they are read again next time.
    expect(recent.next.anchor).toBe(new Date(now.getTime() - HUBSPOT_SEARCH_INDEX_LAG_MS).toISOString());
    expect(recent.next.seenAtAnchor).toEqual([]);
    // An empty window keeps its anchor and what was taken at it.
    const empty = advanceCursor({ ...start, seenAtAnchor: ['x'], newestIds: ['x'] }, [], null, opts);
    expect(empty.next).toMatchObject({ anchor: iso(0), seenAtAnchor: ['x'] });
  });
});
