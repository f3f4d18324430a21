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

/**
 * Sends `rate` purchases a second for `seconds`, each at its own due time, and returns the
 * accepted purchase ids. Evenly paced on purpose: autocannon's `overallRate` releases each
 * second's requests in a burst, which measures queueing behind the burst, not the pipeline.
 */
export async function pacedPurchases(options: {
  url: string;
  rate: number;
  seconds: number;
  bodies: Array<{ userId: number; productId: number }>;
}): Promise<{ accepted: string[]; sentPerSecond: number }> {
  const run = `${process.pid}-${++runCounter}-${Date.now()}`;
  const total = Math.round(options.rate * options.seconds);
  const accepted: string[] = [];
  const inFlight: Array<Promise<void>> = [];
  const started = performance.now();
  for (let n = 0; n < total; n++) {
    const wait = started + (n * 1000) / options.rate - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(
      fetch(`${options.url}/payment/purchase`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `paced-${run}-${n}` },
        body: JSON.stringify(options.bodies[n % options.bodies.length]),
        signal: AbortSignal.timeout(30_000),
      }).then(async (response) => {
        const text = await response.text();
        if (response.status === 202) accepted.push((JSON.parse(text) as { purchaseId: string }).purchaseId);
      }),
    );
  }
  const sentPerSecond = total / ((performance.now() - started) / 1000);
  await Promise.allSettled(inFlight);
  return { accepted, sentPerSecond: Math.round(sentPerSecond) };
}
