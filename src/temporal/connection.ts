import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { dataConverterFromEnv } from './codec';

/**
 * Temporal's usual settings for a remote cluster: TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY (paths,
 * mTLS), TEMPORAL_TLS_CA, TEMPORAL_TLS=true for server-only TLS, TEMPORAL_API_KEY (Cloud).
 */
function tlsFromEnv(env: NodeJS.ProcessEnv) {
  const cert = env.TEMPORAL_TLS_CERT;
  const key = env.TEMPORAL_TLS_KEY;
  const ca = env.TEMPORAL_TLS_CA;
  if (!cert && !key && !ca && env.TEMPORAL_TLS !== 'true' && !env.TEMPORAL_API_KEY) return undefined;
  return {
    ...(cert && key ? { clientCertPair: { crt: readFileSync(cert), key: readFileSync(key) } } : {}),
    ...(ca ? { serverRootCACertificate: readFileSync(ca) } : {}),
  };
}

/** A client; with RECON_PAYLOAD_KEY its payloads are encrypted (src/temporal/codec.ts). */
export async function connectClient(
  address: string,
  namespace: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Client> {
  // Read the key first: a malformed one stops us before any connection is made.
  const dataConverter = dataConverterFromEnv(env);
  const connection = await Connection.connect({
    address,
    tls: tlsFromEnv(env),
    apiKey: env.TEMPORAL_API_KEY,
    connectTimeout: 10_000,
  });
  return new Client({ connection, namespace, dataConverter });
}

export async function connectWorker(address: string, env: NodeJS.ProcessEnv = process.env): Promise<NativeConnection> {
  // The worker applies the codec itself (createWorker); a malformed key should stop it before it connects.
  dataConverterFromEnv(env);
  return NativeConnection.connect({ address, tls: tlsFromEnv(env), apiKey: env.TEMPORAL_API_KEY });
}
