/**
 * What the HTTP adapters share on the wire: one request with a deadline that never throws, the
 * Retry-After header read either way HTTP allows, and a guard that keeps a secret out of any text
 * that leaves an adapter (a sink may echo a header back in an error body).
 */

export type WireAnswer =
  { answered: true; status: number; text: string; headers: Headers } | { answered: false; error: string };

export async function postOnce(
  url: string,
  init: { headers: Record<string, string>; body: string; timeoutMs: number },
): Promise<WireAnswer> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(init.timeoutMs),
    });
    const text = await res.text();
    return { answered: true, status: res.status, text, headers: res.headers };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return { answered: false, error: `no answer within ${Math.round(init.timeoutMs / 1000)}s` };
    const cause = e.cause?.code ?? e.cause?.message ?? e.message;
    return { answered: false, error: `connection failed (${cause})` };
  }
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date (RFC 9110, 10.2.3). */
export function retryAfterMs(value: string | null, now: Date): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

/** The text with every occurrence of the secret replaced, cut to one line a person can read. */
export function withoutSecret(text: string, secret: string, max = 300): string {
  let out = secret.length >= 4 ? text.split(secret).join('[redacted]') : text;
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > max ? `${out.slice(0, max)}…` : out;
}
