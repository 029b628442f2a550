// Optional encryption of workflow payloads (inputs, results, update arguments, activity data).
//
// Temporal keeps every payload in its history; with a hosted cluster that history lives with a
// third party. With RECON_PAYLOAD_KEY set, clients and workers encrypt each payload with
// AES-256-GCM before it leaves the process, so the server only ever stores ciphertext. Workflow
// ids and search attributes are not payloads: they stay readable and carry no personal data.
//
// Rotation: every encrypted payload names the id of its key in its metadata. Put the new key in
// RECON_PAYLOAD_KEY and the old ones in RECON_PAYLOAD_OLD_KEYS (comma-separated) until every
// workflow that used them has finished; new payloads always use the current key.

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { ReconError } from '../domain/errors';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const CANONICAL_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface PayloadKey {
  /** Derived from the key itself (a hash prefix), so nobody has to name or track key ids. */
  id: string;
  key: Buffer;
}

/** Reads one key: the base64 of exactly 32 random bytes, e.g. from `openssl rand -base64 32`. */
export function parsePayloadKey(text: string, variable: string): PayloadKey {
  const trimmed = text.trim();
  // Buffer.from(…, 'base64') skips characters it does not know; check the text strictly first,
  // so a truncated or mangled secret is refused rather than silently turned into another key.
  const key = CANONICAL_BASE64.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
  if (!key || key.toString('base64') !== trimmed || key.length !== KEY_BYTES) {
    const got = key && key.toString('base64') === trimmed ? `${key.length} bytes` : 'text that is not base64';
    throw new ReconError(
      'invalid_payload_key',
      `${variable} must be the base64 of exactly ${KEY_BYTES} bytes (make one with \`openssl rand -base64 32\`); got ${got}`,
    );
  }
  return { id: `aes256gcm-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`, key };
}

/** AES-256-GCM over the whole payload (metadata and data), with the key id as associated data. */
export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;

  constructor(
    private readonly current: PayloadKey,
    older: PayloadKey[] = [],
  ) {
    this.byId = new Map([...older, current].map((k) => [k.id, k.key]));
  }

  // PayloadCodec is async; an async method turns a failure into a rejection, as the SDK expects.
  // eslint-disable-next-line @typescript-eslint/require-await
  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- as encode: a failure is a rejection
  async decode(payloads: Payload[]): Promise<Payload[]> {
    // Payloads written before the codec was switched on stay readable.
    return payloads.map((p) => (encodingOf(p) === ENCRYPTED_ENCODING ? this.decrypt(p) : p));
  }

  private encrypt(payload: Payload): Payload {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(utf8.encode(this.current.id));
    const body = cipher.update(serialise(payload));
    const final = cipher.final();
    return {
      metadata: { encoding: utf8.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8.encode(this.current.id) },
      data: Buffer.concat([iv, body, final, cipher.getAuthTag()]),
    };
  }

  private decrypt(payload: Payload): Payload {
    const keyId = payload.metadata?.[KEY_ID_METADATA] ? fromUtf8.decode(payload.metadata[KEY_ID_METADATA]) : '(none)';
    const key = this.byId.get(keyId);
    if (!key) {
      throw new ReconError(
        'payload_key_unknown',
        `a workflow payload is encrypted with key ${keyId}, which this process does not have: set the key it was written with in RECON_PAYLOAD_OLD_KEYS`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES)
      throw new ReconError('payload_corrupt', `an encrypted workflow payload (key ${keyId}) is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(utf8.encode(keyId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    try {
      return deserialise(
        Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]),
      );
    } catch {
      throw new ReconError(
        'payload_corrupt',
        `an encrypted workflow payload (key ${keyId}) fails its integrity check: altered, or encrypted with another key under the same id`,
      );
    }
  }
}

function encodingOf(p: Payload): string | undefined {
  const e = p.metadata?.encoding;
  return e ? fromUtf8.decode(e) : undefined;
}

// A payload as JSON: metadata values and data in base64. Plain and dependency-free; the few
// bytes it costs over protobuf do not matter next to a workflow's history.
function serialise(p: Payload): Buffer {
  const metadata = Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  );
  return Buffer.from(JSON.stringify({ metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') }));
}

function deserialise(bytes: Buffer): Payload {
  const parsed = JSON.parse(bytes.toString('utf8')) as { metadata: Record<string, string>; data: string };
  const metadata = Object.fromEntries(
    Object.entries(parsed.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
  );
  return { metadata, data: new Uint8Array(Buffer.from(parsed.data, 'base64')) };
}

/**
 * The codec the environment asks for: none without RECON_PAYLOAD_KEY. A malformed key stops
 * the process here, before it talks to Temporal with payloads nobody can read back.
 */
export function payloadCodecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmPayloadCodec | undefined {
  const current = env.RECON_PAYLOAD_KEY;
  if (current === undefined || current.trim() === '') {
    if (env.RECON_PAYLOAD_OLD_KEYS?.trim()) {
      throw new ReconError(
        'invalid_payload_key',
        'RECON_PAYLOAD_OLD_KEYS is set but RECON_PAYLOAD_KEY is not: set the current key too',
      );
    }
    return undefined;
  }
  const older = (env.RECON_PAYLOAD_OLD_KEYS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s, i) => parsePayloadKey(s, `RECON_PAYLOAD_OLD_KEYS (key ${i + 1})`));
  return new AesGcmPayloadCodec(parsePayloadKey(current, 'RECON_PAYLOAD_KEY'), older);
}

/** The data converter for clients and workers: the default one, plus encryption when configured. */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const codec = payloadCodecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : undefined;
}
