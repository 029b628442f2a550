import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook, webhookKey } from '../../src/sinks/standard-webhooks';
import { codeOf } from './helpers';

// The published vector of the Standard Webhooks reference libraries
// (standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts, "sign function works").
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const AT_VECTOR = new Date(VECTOR.timestamp * 1000);

function headers(signature: string, id = VECTOR.id, timestamp = String(VECTOR.timestamp)) {
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature };
}

describe('Standard Webhooks signatures', () => {
  it('signs the published test vector exactly', () => {
    expect(signWebhook(VECTOR)).toBe(VECTOR.signature);
  });

  it('takes the secret with or without its whsec_ prefix', () => {
    expect(signWebhook({ ...VECTOR, secret: VECTOR.secret.slice('whsec_'.length) })).toBe(VECTOR.signature);
  });

  it('verifies the published vector at its own time', () => {
    const verdict = verifyWebhook({
      secret: VECTOR.secret,
      headers: headers(VECTOR.signature),
      body: VECTOR.body,
      now: AT_VECTOR,
    });
    expect(verdict).toEqual({ ok: true, id: VECTOR.id, timestamp: VECTOR.timestamp });
  });

  it('refuses a body that differs by one byte (a re-serialized JSON)', () => {
    const verdict = verifyWebhook({
      secret: VECTOR.secret,
      headers: headers(VECTOR.signature),
      body: '{"test":2432232314}',
      now: AT_VECTOR,
    });
    expect(verdict).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses another secret, another id, another timestamp', () => {
    const other = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    expect(
      verifyWebhook({ secret: other, headers: headers(VECTOR.signature), body: VECTOR.body, now: AT_VECTOR }).ok,
    ).toBe(false);
    expect(
      verifyWebhook({
        secret: VECTOR.secret,
        headers: headers(VECTOR.signature, 'msg_other'),
        body: VECTOR.body,
        now: AT_VECTOR,
      }).ok,
    ).toBe(false);
    expect(
      verifyWebhook({
        secret: VECTOR.secret,
        headers: headers(VECTOR.signature, VECTOR.id, String(VECTOR.timestamp + 1)),
        body: VECTOR.body,
        now: AT_VECTOR,
      }).ok,
    ).toBe(false);
  });

  it('refuses timestamps more than five minutes either side of now', () => {
    const at = (offsetSeconds: number) =>
      verifyWebhook({
        secret: VECTOR.secret,
        headers: headers(VECTOR.signature),
        body: VECTOR.body,
        now: new Date((VECTOR.timestamp + offsetSeconds) * 1000),
      });
    expect(at(300).ok).toBe(true);
    expect(at(-300).ok).toBe(true);
    expect(at(301)).toEqual({ ok: false, reason: 'timestamp_too_old' });
    expect(at(-301)).toEqual({ ok: false, reason: 'timestamp_too_new' });
  });

  it('accepts a list of signatures when one of them matches (key rotation)', () => {
    const list = [
      'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
      'v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
      VECTOR.signature,
    ].join(' ');
    expect(verifyWebhook({ secret: VECTOR.secret, headers: headers(list), body: VECTOR.body, now: AT_VECTOR }).ok).toBe(
      true,
    );
    // The right bytes under another version tag do not count.
    expect(
      verifyWebhook({
        secret: VECTOR.secret,
        headers: headers(VECTOR.signature.replace('v1,', 'v2,')),
        body: VECTOR.body,
        now: AT_VECTOR,
      }).ok,
    ).toBe(false);
  });

  it('refuses missing headers, a partial signature and a timestamp that is not a number', () => {
    const check = (h: Record<string, string>) =>
      verifyWebhook({ secret: VECTOR.secret, headers: h, body: VECTOR.body, now: AT_VECTOR });
    expect(check({ 'webhook-id': VECTOR.id, 'webhook-timestamp': String(VECTOR.timestamp) })).toEqual({
      ok: false,
      reason: 'missing_headers',
    });
    expect(check(headers(VECTOR.signature.slice(0, 8))).ok).toBe(false);
    expect(check(headers('v1,')).ok).toBe(false);
    expect(check(headers(VECTOR.signature, VECTOR.id, 'hello'))).toEqual({ ok: false, reason: 'bad_timestamp' });
  });

  it('takes only secrets of 24 to 64 random bytes in base64', () => {
    expect(webhookKey(VECTOR.secret)?.length).toBe(24);
    expect(webhookKey('whsec_' + Buffer.alloc(16).toString('base64'))).toBeNull();
    expect(webhookKey('whsec_not base64!')).toBeNull();
    expect(webhookKey('')).toBeNull();
    expect(codeOf(() => signWebhook({ ...VECTOR, secret: 'sk_live_abc' }))).toBe('invalid_webhook_secret');
  });

  it('refuses to sign an id with a full stop, which would make two messages sign alike', () => {
    expect(codeOf(() => signWebhook({ ...VECTOR, id: 'a.b' }))).toBe('invalid_webhook_message');
  });
});
