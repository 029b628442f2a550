import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  AesGcmPayloadCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  dataConverterFromEnv,
  parsePayloadKey,
  payloadCodecFromEnv,
} from '../../src/temporal/codec';
import { errorOf } from './helpers';

const newKey = () => randomBytes(32).toString('base64');
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const payload = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const SECRET = { tenant: 'acme', subject: 'jane.doe@example.com', note: 'Jane Doe called about T-1001' };

describe('payload codec: AES-256-GCM with the key id in the metadata', () => {
  it('round-trips payloads, and the encrypted form shows none of the plaintext', async () => {
    const codec = payloadCodecFromEnv({ RECON_PAYLOAD_KEY: newKey() })!;
    const original = [payload(SECRET), payload(null), payload(new Uint8Array([0, 1, 2]))];
    const encrypted = await codec.encode(original);
    for (const p of encrypted) {
      expect(text(p.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(text(p.metadata?.[KEY_ID_METADATA])).toMatch(/^aes256gcm-[0-9a-f]{16}$/);
      for (const word of ['acme', 'jane', 'Jane', 'T-1001', 'json/plain']) expect(text(p.data)).not.toContain(word);
    }
    const decoded = await codec.decode(encrypted);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      SECRET,
      null,
      new Uint8Array([0, 1, 2]),
    ]);
  });

  it('uses a fresh IV per payload: the same value encrypts differently', async () => {
    const codec = payloadCodecFromEnv({ RECON_PAYLOAD_KEY: newKey() })!;
    const [a, b] = await codec.encode([payload(SECRET), payload(SECRET)]);
    expect(Buffer.from(a.data!).equals(Buffer.from(b.data!))).toBe(false);
  });

  it('passes payloads written without the codec through unchanged (old histories stay readable)', async () => {
    const codec = payloadCodecFromEnv({ RECON_PAYLOAD_KEY: newKey() })!;
    const plain = payload(SECRET);
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  it('rotates: a new current key still reads payloads written with an old one', async () => {
    const oldKey = newKey();
    const before = await payloadCodecFromEnv({ RECON_PAYLOAD_KEY: oldKey })!.encode([payload(SECRET)]);
    const rotated = payloadCodecFromEnv({
      RECON_PAYLOAD_KEY: newKey(),
      RECON_PAYLOAD_OLD_KEYS: ` ${newKey()}, ${oldKey} `,
    })!;
    expect(defaultPayloadConverter.fromPayload((await rotated.decode(before))[0])).toEqual(SECRET);
    // New payloads use the new key.
    const after = await rotated.encode([payload(SECRET)]);
    expect(text(after[0].metadata?.[KEY_ID_METADATA])).not.toBe(text(before[0].metadata?.[KEY_ID_METADATA]));
  });

  it('refuses a payload whose key it lacks, naming the key id and what to set', async () => {
    const oldKey = parsePayloadKey(newKey(), 'test');
    const encrypted = await new AesGcmPayloadCodec(oldKey).encode([payload(SECRET)]);
    const e = await new AesGcmPayloadCodec(parsePayloadKey(newKey(), 'test')).decode(encrypted).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toMatchObject({
      code: 'payload_key_unknown',
      message: `a workflow payload is encrypted with key ${oldKey.id}, which this process does not have: set the key it was written with in RECON_PAYLOAD_OLD_KEYS`,
    });
  });

  it('refuses a payload that was altered', async () => {
    const codec = payloadCodecFromEnv({ RECON_PAYLOAD_KEY: newKey() })!;
    const [p] = await codec.encode([payload(SECRET)]);
    const data = Buffer.from(p.data!);
    data[20] ^= 1;
    await expect(codec.decode([{ ...p, data }])).rejects.toMatchObject({ code: 'payload_corrupt' });
    await expect(codec.decode([{ ...p, data: data.subarray(0, 10) }])).rejects.toMatchObject({
      code: 'payload_corrupt',
    });
  });
});

describe('payload codec: configuration from the environment', () => {
  it('is off without RECON_PAYLOAD_KEY', () => {
    expect(dataConverterFromEnv({})).toBeUndefined();
    expect(dataConverterFromEnv({ RECON_PAYLOAD_KEY: '  ' })).toBeUndefined();
  });

  it('is on with a key, as the one payload codec of the data converter', () => {
    const dc = dataConverterFromEnv({ RECON_PAYLOAD_KEY: newKey() });
    expect(dc?.payloadCodecs).toHaveLength(1);
    expect(dc?.payloadCodecs?.[0]).toBeInstanceOf(AesGcmPayloadCodec);
  });

  it('derives the same key id from the same key (ids need no bookkeeping)', () => {
    const k = newKey();
    expect(parsePayloadKey(k, 'x').id).toBe(parsePayloadKey(` ${k}\n`, 'x').id);
    expect(parsePayloadKey(k, 'x').id).not.toBe(parsePayloadKey(newKey(), 'x').id);
  });

  it.each<[string, string]>([
    [randomBytes(16).toString('base64'), 'got 16 bytes'],
    [randomBytes(33).toString('base64'), 'got 33 bytes'],
    ['not a key at all', 'got text that is not base64'],
    [newKey().slice(0, 40), 'got 30 bytes'],
    [newKey().replace(/=$/, ''), 'got text that is not base64'],
    [randomBytes(32).toString('hex'), 'got 48 bytes'],
  ])('refuses a malformed RECON_PAYLOAD_KEY with a clear reason: %j', (key, got) => {
    const e = errorOf(() => dataConverterFromEnv({ RECON_PAYLOAD_KEY: key }));
    expect(e.code).toBe('invalid_payload_key');
    expect(e.message).toBe(
      `RECON_PAYLOAD_KEY must be the base64 of exactly 32 bytes (make one with \`openssl rand -base64 32\`); ${got}`,
    );
  });

  it('refuses a malformed old key, naming which one, and old keys without a current key', () => {
    expect(
      errorOf(() => dataConverterFromEnv({ RECON_PAYLOAD_KEY: newKey(), RECON_PAYLOAD_OLD_KEYS: `${newKey()},short` }))
        .message,
    ).toMatch(/^RECON_PAYLOAD_OLD_KEYS \(key 2\) must be the base64 of exactly 32 bytes/);
    expect(errorOf(() => dataConverterFromEnv({ RECON_PAYLOAD_OLD_KEYS: newKey() }))).toMatchObject({
      code: 'invalid_payload_key',
    });
  });
});
