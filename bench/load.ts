import autocannon from 'autocannon';

/** What one load run measured. */
export interface LoadResult {
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  requests: number;
  statusCounts: Record<string, number>;
  errors: number;
}

export interface PurchaseLoadOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  /** The purchases to send, round-robin (one body per user/product pair). */
  bodies: Array<{ userId: number; productId: number }>;
  /** 'distinct': a fresh Idempotency-Key per request; 'duplicate': the same key and body always. */
  keys: 'distinct' | 'duplicate';
  /** Offered load in requests per second; default as fast as the server answers. */
  overallRate?: number;
  /** Collects the purchase ids the server accepted (for end-to-end latency). */
  onAccepted?: (purchaseId: string) => void;
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
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
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
        ...(options.onAccepted
          ? {
              onResponse: (status: number, body: string) => {
                if (status === 202) options.onAccepted!((JSON.parse(body) as { purchaseId: string }).purchaseId);
              },
            }
          : {}),
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
