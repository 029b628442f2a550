import { Writable } from 'node:stream';

/** A stream that keeps what is written to it, for exports written to a stream in tests. */
export function textSink(): { out: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c as Uint8Array));
      cb();
    },
  });
  return { out, text: () => Buffer.concat(chunks).toString('utf8') };
}
