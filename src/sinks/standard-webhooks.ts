import { createHmac, timingSafeEqual } from 'node:crypto';
import { ReconError } from '../domain/errors';

/**
 * Signing and verifying as the Standard Webhooks specification says
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
 * "Signature scheme" and "Verifying signatures"): the signed content is `${id}.${timestamp}.${body}`,
 * the key is the base64 part of a `whsec_` secret, the signature HMAC-SHA256 in base64 behind `v1,`,
 * and the `webhook-signature` header a space-separated list of such signatures (key rotation).
 */

/** The spec's replay tolerance is "some allowable tolerance"; its reference libraries use 5 minutes. */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

const PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The signing key of a secret, or null when it is not one. The spec's symmetric secrets are random,
 * 24 to 64 bytes, serialized as base64 behind `whsec_`; the reference libraries also take the bare
 * base64, and so do we.
 */
export function webhookKey(secret: string): Buffer | null {
  const b64 = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  if (!BASE64.test(b64) || b64.length % 4 !== 0) return null;
  const key = Buffer.from(b64, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : null;
}

/** The `webhook-signature` value (one `v1,` signature) for a message. */
export function signWebhook(args: { secret: string; id: string; timestamp: number; body: string }): string {
  const key = webhookKey(args.secret);
  if (!key)
    throw new ReconError(
      'invalid_webhook_secret',
      'the webhook secret is not a Standard Webhooks secret (whsec_ followed by 24 to 64 bytes in base64); generate one and set it again',
    );
  // The spec forbids a '.' in the id and timestamp: either would let two messages sign alike.
  if (!/^[^.\s]+$/.test(args.id) || !Number.isSafeInteger(args.timestamp) || args.timestamp < 0)
    throw new ReconError('invalid_webhook_message', `webhook id "${args.id}" or timestamp cannot be signed`);
  const mac = createHmac('sha256', key).update(`${args.id}.${args.timestamp}.${args.body}`, 'utf8').digest('base64');
  return `v1,${mac}`;
}

export type WebhookVerdict =
  | { ok: true; id: string; timestamp: number }
  | {
      ok: false;
      reason: 'missing_headers' | 'bad_timestamp' | 'timestamp_too_old' | 'timestamp_too_new' | 'bad_signature';
    };

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Checks a received webhook: the three headers present, the timestamp within the tolerance of `now`
 * (replays), and one of the listed `v1` signatures equal to ours, compared in constant time. The body
 * must be the bytes received, never a re-serialization of its JSON.
 */
export function verifyWebhook(args: {
  secret: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  now: Date;
  toleranceSeconds?: number;
}): WebhookVerdict {
  const id = header(args.headers, 'webhook-id');
  const ts = header(args.headers, 'webhook-timestamp');
  const sigs = header(args.headers, 'webhook-signature');
  if (!id || !ts || !sigs) return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,15}$/.test(ts)) return { ok: false, reason: 'bad_timestamp' };
  const timestamp = Number(ts);
  const tolerance = args.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor(args.now.getTime() / 1000);
  if (timestamp < nowSeconds - tolerance) return { ok: false, reason: 'timestamp_too_old' };
  if (timestamp > nowSeconds + tolerance) return { ok: false, reason: 'timestamp_too_new' };
  let expected: Buffer;
  try {
    expected = Buffer.from(signWebhook({ secret: args.secret, id, timestamp, body: args.body }).slice(3), 'base64');
  } catch {
    return { ok: false, reason: 'bad_signature' };
  }
  let match = false;
  for (const item of sigs.split(' ')) {
    const comma = item.indexOf(',');
    if (comma < 0 || item.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(item.slice(comma + 1), 'base64');
    // No early exit: every listed signature costs the same whether or not an earlier one matched.
    if (given.length === expected.length && timingSafeEqual(given, expected)) match = true;
  }
  return match ? { ok: true, id, timestamp } : { ok: false, reason: 'bad_signature' };
}
