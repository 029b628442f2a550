import { createHash } from 'node:crypto';
import { verifyWebhook, type WebhookVerdict } from '../sinks/standard-webhooks';
import type { EmulatorHandle, EmulatorOptions } from './common';
import { startHttpEmulator, type EmulatorReply } from './http-emulator';

/**
 * A webhook receiver that does what the Standard Webhooks specification asks of a consumer
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
 * "Verifying signatures"): it verifies the signature over the bytes received with the shared
 * secret, refuses a timestamp outside the tolerance (replays), and uses `webhook-id` as an
 * idempotency key so a resend is not processed twice. It answers 2xx for success (the spec's only
 * success), 400 for a webhook it will not take. Any path but /_emulator/* receives.
 */

export interface ReceivedWebhook {
  id: string;
  path: string;
  /** The `webhook-timestamp` of the attempt that was taken (seconds). */
  timestamp: number;
  receivedAt: string;
  /** The payload's `type`, when the body is JSON with one. */
  type: string | null;
  body: unknown;
  /** sha256 of the bytes received, to check that resends carry the same body. */
  bodySha256: string;
  /** Later deliveries of the same id inside the dedup window, answered 2xx and not processed. */
  repeats: number;
  /** Of those, how many carried other bytes than the first: a sender that re-serializes its body. */
  repeatsWithOtherBody: number;
}

export interface WebhookRejection {
  id: string | null;
  at: string;
  reason: Exclude<WebhookVerdict, { ok: true }>['reason'] | 'bad_json';
}

export interface WebhookReceiverState {
  events: ReceivedWebhook[];
  rejections: WebhookRejection[];
}

export interface WebhookReceiverOptions extends EmulatorOptions {
  /** How long an id is remembered (default 24 hours, the contract's default dedupWindowHours). */
  dedupWindowMs?: number;
}

export interface WebhookReceiverHandle extends EmulatorHandle {
  state(): WebhookReceiverState;
}

const MAX_REJECTIONS_KEPT = 1000;

export async function startWebhookReceiver(opts: WebhookReceiverOptions): Promise<WebhookReceiverHandle> {
  const windowMs = opts.dedupWindowMs ?? 24 * 3600_000;
  return startHttpEmulator<WebhookReceiverState>(opts, {
    name: 'webhook-receiver',
    initialState: () => ({ events: [], rejections: [] }),
    parseState(raw) {
      const s = raw as WebhookReceiverState | null;
      if (!s || !Array.isArray(s.events) || !Array.isArray(s.rejections))
        throw new Error('the state file does not hold a webhook receiver state');
      return s;
    },
    errorBody: (_status, message) => ({ error: message }),
    summary: (state) => ({
      events: state.events.length,
      repeats: state.events.reduce((n, e) => n + e.repeats, 0),
      rejections: state.rejections.length,
    }),
    handle(req, ctx): EmulatorReply {
      if (req.method !== 'POST') return { status: 405, json: { error: 'webhooks are POSTed' } };
      const now = ctx.now();
      const state = ctx.state;
      const reject = (id: string | null, reason: WebhookRejection['reason']): EmulatorReply => {
        state.rejections.push({ id, at: now.toISOString(), reason });
        if (state.rejections.length > MAX_REJECTIONS_KEPT) state.rejections.shift();
        return { status: 400, json: { error: reason }, changed: true };
      };
      const verdict = verifyWebhook({ secret: opts.secret, headers: req.headers, body: req.body, now });
      if (!verdict.ok) {
        const id = req.headers['webhook-id'];
        return reject(typeof id === 'string' ? id : null, verdict.reason);
      }
      const since = now.getTime() - windowMs;
      const earlier = state.events.find((e) => e.id === verdict.id && Date.parse(e.receivedAt) > since);
      const sha = createHash('sha256').update(req.body, 'utf8').digest('hex');
      if (earlier) {
        earlier.repeats++;
        if (earlier.bodySha256 !== sha) earlier.repeatsWithOtherBody++;
        return { status: 200, json: { received: true, duplicate: true }, changed: true };
      }
      let body: unknown;
      try {
        body = JSON.parse(req.body);
      } catch {
        return reject(verdict.id, 'bad_json');
      }
      const type = body && typeof body === 'object' && typeof (body as { type?: unknown }).type === 'string';
      state.events.push({
        id: verdict.id,
        path: req.path,
        timestamp: verdict.timestamp,
        receivedAt: now.toISOString(),
        type: type ? (body as { type: string }).type : null,
        body,
        bodySha256: sha,
        repeats: 0,
        repeatsWithOtherBody: 0,
      });
      return { status: 200, json: { received: true }, changed: true };
    },
  });
}
