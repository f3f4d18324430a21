import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { checkResolvedAddresses, normalizeHost } from '../../shared/webhooks/address-guard.js';
import type { AttemptResult } from '../../shared/webhooks/deliveries-repository.js';

/** Resolves a host name to every address it has (`dns.lookup` with `all`); tests pass their own. */
export type Resolve = (host: string) => Promise<Array<{ address: string; family: number }>>;

export interface SendWebhookOptions {
  /** A 2xx within this long counts as delivered; anything slower is a failed attempt. */
  timeoutMs: number;
  /** WEBHOOK_ALLOWED_HOSTS: hosts and addresses allowed although they are not public. */
  allowedHosts: readonly string[];
  resolve?: Resolve;
}

/** How much of an endpoint's answer is read (and thrown away) before the connection is closed. */
const MAX_RESPONSE_BYTES = 64 * 1024;

const defaultResolve: Resolve = (host) => dnsLookup(host, { all: true, verbatim: true });

/**
 * Sends one webhook: POST `body` to `url` with `headers`. Before connecting it resolves the host
 * and refuses if any address it has is not public (unless allowed), then connects to exactly the
 * address it checked, so a name cannot be re-resolved elsewhere between the check and the
 * connection. Redirects are not followed (a 3xx is a failed attempt). Never rejects: every
 * outcome is an AttemptResult.
 */
export async function sendWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: SendWebhookOptions,
): Promise<AttemptResult> {
  const started = performance.now();
  const failed = (error: string, statusCode: number | null = null): AttemptResult => ({
    statusCode,
    error,
    durationMs: performance.now() - started,
    delivered: false,
  });
  const target = new URL(url);
  const host = normalizeHost(target.hostname);
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses =
      isIP(host) === 0 ? await (options.resolve ?? defaultResolve)(host) : [{ address: host, family: isIP(host) }];
  } catch (error) {
    return failed(`could not resolve ${host}: ${(error as Error).message}`);
  }
  const refusal = checkResolvedAddresses(
    host,
    addresses.map(({ address }) => address),
    options.allowedHosts,
  );
  if (refusal) return failed(`refused: ${refusal}`);
  const [{ address, family }] = addresses as [{ address: string; family: number }];
  // The connection goes to the address checked above, whatever resolving again would say.
  const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
    if (lookupOptions.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };

  return new Promise<AttemptResult>((resolve) => {
    const requestOptions: RequestOptions = {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'payonce-webhooks/1',
      },
      lookup: pinned,
      agent: false,
      signal: AbortSignal.timeout(options.timeoutMs),
      ...(target.protocol === 'https:' && isIP(host) === 0 ? { servername: host } : {}),
    };
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send(target, requestOptions, (response) => {
      const statusCode = response.statusCode ?? 0;
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_RESPONSE_BYTES) response.destroy();
      });
      const settle = () =>
        resolve(
          statusCode >= 200 && statusCode < 300
            ? { statusCode, error: null, durationMs: performance.now() - started, delivered: true }
            : failed(`HTTP ${statusCode}`, statusCode),
        );
      response.once('end', settle);
      response.once('close', settle);
      response.once('error', settle);
    });
    request.once('error', (error: NodeJS.ErrnoException) => {
      resolve(
        failed(
          error.name === 'AbortError' ? `no answer within ${options.timeoutMs} ms` : (error.code ?? error.message),
        ),
      );
    });
    request.end(body);
  });
}
