import { Agent, request } from 'node:http';
import autocannon from 'autocannon';
import type { CpuUse } from './cpu.js';

/** What one load run measured. */
export interface LoadResult {
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  requests: number;
  statusCounts: Record<string, number>;
  errors: number;
  /** CPU per request of each process taking part, in microseconds (when measured). */
  cpu?: CpuUse;
}

export interface PurchaseLoadOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  /** The purchases to send, round-robin (one body per user/product pair). */
  bodies: Array<{ userId: number; productId: number }>;
  /** 'distinct': a fresh Idempotency-Key per request; 'duplicate': the same key and body always. */
  keys: 'distinct' | 'duplicate';
  /** The account's API key every request sends (the baselines ignore it). */
  apiKey: string;
}

let runCounter = 0;

/** Drives `POST /payment/purchase` with autocannon and summarises the run. */
export async function purchaseLoad(options: PurchaseLoadOptions): Promise<LoadResult> {
  const run = `${process.pid}-${++runCounter}-${Date.now()}`;
  let sequence = 0;
  const first = JSON.stringify(options.bodies[0]);
  const result = await autocannon({
    url: `${options.url}/payment/purchase`,
    connections: options.connections,
    duration: options.durationSeconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => {
          const n = sequence++;
          const duplicate = options.keys === 'duplicate';
          return {
            ...request,
            headers: {
              authorization: `Bearer ${options.apiKey}`,
              'content-type': 'application/json',
              'idempotency-key': duplicate ? `bench-${run}` : `bench-${run}-${n}`,
            },
            body: duplicate ? first : JSON.stringify(options.bodies[n % options.bodies.length]),
          };
        },
      },
    ],
  });
  const statusCounts: Record<string, number> = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCounts[status] = count ?? 0;
  return {
    requestsPerSecond: Math.round(result.requests.average),
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    requests: result.requests.total,
    statusCounts,
    errors: result.errors,
  };
}

/** One POST over a kept-alive connection; resolves with the status code and body. */
function post(
  agent: Agent,
  url: URL,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) }, timeout: 30_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sends `rate` purchases a second for `seconds`, each at its own due time, and returns the
 * accepted purchase ids. Evenly paced on purpose: autocannon's `overallRate` releases each
 * second's requests in a burst, which measures queueing behind the burst, not the pipeline.
 * It sends with node:http over kept-alive connections, which costs this process less than
 * half the CPU per request that `fetch` did (measured here at 500/s: 330 against 720-810 µs),
 * CPU that the processes under test share.
 */
export async function pacedPurchases(options: {
  url: string;
  rate: number;
  seconds: number;
  bodies: Array<{ userId: number; productId: number }>;
  /** The account's API key every request sends. */
  apiKey: string;
}): Promise<{ accepted: string[]; sentPerSecond: number }> {
  const run = `${process.pid}-${++runCounter}-${Date.now()}`;
  const total = Math.round(options.rate * options.seconds);
  const accepted: string[] = [];
  const inFlight: Array<Promise<void>> = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(`${options.url}/payment/purchase`);
  const started = performance.now();
  for (let n = 0; n < total; n++) {
    const wait = started + (n * 1000) / options.rate - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const headers = {
      authorization: `Bearer ${options.apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': `paced-${run}-${n}`,
    };
    inFlight.push(
      post(agent, target, headers, JSON.stringify(options.bodies[n % options.bodies.length])).then(
        ({ status, text }) => {
          if (status !== 202) throw new Error(`a paced purchase got HTTP ${status}: ${text}`);
          accepted.push((JSON.parse(text) as { purchaseId: string }).purchaseId);
        },
      ),
    );
  }
  const sentPerSecond = total / ((performance.now() - started) / 1000);
  const failed = (await Promise.allSettled(inFlight)).filter((result) => result.status === 'rejected');
  agent.destroy();
  // Latency is only measured over purchases the API accepted; anything else spoils the run.
  if (failed.length > 0) {
    throw new Error(`${failed.length} of ${total} paced purchases failed, first: ${String(failed[0]!.reason)}`);
  }
  return { accepted, sentPerSecond: Math.round(sentPerSecond) };
}
