import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { registerMetricsEndpoint } from '../shared/http/metrics-endpoint.js';
import type { Logger } from '../shared/logger.js';
import type { QueueDepth } from '../shared/queue/purchase-producer.js';
import { isAppError } from './errors.js';
import type { PurchaseTimings } from './purchase-service.js';

export interface ApiMetricsOptions {
  /** The operator token `GET /metrics` asks for (ADMIN_TOKEN). */
  adminToken: string;
  /** The queue's depth, read at each scrape. Absent (SQS): no queue gauges. */
  queueDepth?: (() => Promise<QueueDepth>) | undefined;
  /** How many `Prefer: wait` requests are waiting now. */
  waiting?: (() => number) | undefined;
  /** How many events streams are open now. */
  streaming?: (() => number) | undefined;
  /** The registry to serve, with what was registered in it before the app (`createPurchaseTimings`). */
  registry: Registry;
  logger: Logger;
}

const PURCHASE_OUTCOMES = ['accepted', 'duplicate', 'key_reused', 'rejected', 'rate_limited', 'unavailable'] as const;
type PurchaseOutcome = (typeof PURCHASE_OUTCOMES)[number];

/**
 * What a purchase submission came to, by its answer: `accepted` (202, or 200 after `Prefer: wait`),
 * `duplicate` (204), `key_reused` (422 IDEMPOTENCY_KEY_REUSED), `rate_limited` (429),
 * `rejected` (any other 4xx: bad input, a missing or bad API key, unknown user or product),
 * `unavailable` (5xx: nothing was accepted; retrying is safe).
 */
export function purchaseOutcome(statusCode: number, errorCode: string | undefined): PurchaseOutcome {
  if (statusCode === 200 || statusCode === 202) return 'accepted';
  if (statusCode === 204) return 'duplicate';
  if (errorCode === 'IDEMPOTENCY_KEY_REUSED') return 'key_reused';
  if (statusCode === 429) return 'rate_limited';
  if (statusCode >= 400 && statusCode < 500) return 'rejected';
  return 'unavailable';
}

const PURCHASE_ROUTE = '/payment/purchase';

/**
 * The API's Prometheus metrics, in a registry of this app's own (tests run many apps in one
 * process), served at `GET /metrics` behind ADMIN_TOKEN. Registered only when ADMIN_TOKEN is set:
 * without it nobody can scrape, so requests pay for no hook. Register before the routes: the hooks
 * time every route added after them.
 */
export function registerMetrics(app: FastifyInstance, options: ApiMetricsOptions): void {
  const { registry } = options;

  const requestDuration = new Histogram({
    name: 'payonce_http_request_duration_seconds',
    help: 'Time from a request arriving to its answer being sent, by route and status.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const purchases = new Counter({
    name: 'payonce_purchases_total',
    help: `Purchase submissions by outcome: ${PURCHASE_OUTCOMES.join(', ')}.`,
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of PURCHASE_OUTCOMES) {
    purchases.inc({ outcome }, 0); // every series exists from the start, so rate() sees its first increase
  }

  if (options.waiting) {
    const waiting = options.waiting;
    new Gauge({
      name: 'payonce_prefer_wait_requests',
      help: 'Requests holding a Prefer: wait open on this process now.',
      registers: [registry],
      collect() {
        this.set(waiting());
      },
    });
  }

  if (options.streaming) {
    const streaming = options.streaming;
    new Gauge({
      name: 'payonce_status_streams',
      help: 'Purchase events streams open on this process now (at most STATUS_STREAMS_MAX).',
      registers: [registry],
      collect() {
        this.set(streaming());
      },
    });
  }

  if (options.queueDepth) {
    const readDepth = options.queueDepth;
    // One read of the queue per scrape, shared by both gauges.
    let pending: Promise<QueueDepth | null> | undefined;
    const depthOnce = () =>
      (pending ??= readDepth()
        .catch((error: unknown) => {
          options.logger.warn({ err: error }, 'could not read the queue depth for /metrics');
          return null;
        })
        .finally(() => {
          // Both gauges' collect() start in the same tick of registry.metrics(), so both
          // already hold this promise; the next scrape reads the queue afresh.
          pending = undefined;
        }));
    new Gauge({
      name: 'payonce_queue_jobs',
      help: 'Purchase jobs in the queue by state: waiting (delayed retries included) or active.',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const depth = await depthOnce();
        this.reset(); // unreadable: no sample, rather than a stale one
        if (depth) {
          this.set({ state: 'waiting' }, depth.waiting);
          this.set({ state: 'active' }, depth.active);
        }
      },
    });
    new Gauge({
      name: 'payonce_queue_oldest_waiting_age_seconds',
      help: 'Age of the oldest purchase job ready and waiting for a worker (delayed retries not counted); 0 when none waits.',
      registers: [registry],
      async collect() {
        const depth = await depthOnce();
        this.reset();
        if (depth) this.set(depth.oldestWaitingAgeSeconds);
      },
    });
  }

  // The stable code of a failed request, for the purchase outcome (onError runs before onResponse).
  const errorCodes = new WeakMap<FastifyRequest, string>();
  app.addHook('onError', async (request, _reply, error) => {
    if (isAppError(error)) errorCodes.set(request, error.code);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route === '/metrics') return;
    requestDuration.observe(
      // Unmatched routes share one label: a scan of random paths must not create a series each.
      { method: request.method, route: route ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (route === PURCHASE_ROUTE && request.method === 'POST') {
      purchases.inc({ outcome: purchaseOutcome(reply.statusCode, errorCodes.get(request)) });
    }
  });

  registerMetricsEndpoint(app, { registry, adminToken: options.adminToken });
}

/** Buckets of one round trip to Redis or Postgres on the accept path: 0.5 ms to 2.5 s. */
const ROUND_TRIP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The accept path's latencies (`purchase-service.ts` measures them), registered in `registry`:
 * `payonce_claim_duration_seconds` (one claim of an idempotency key, by result) and
 * `payonce_enqueue_duration_seconds` (one enqueue of a purchase job, by result). Made only when
 * metrics are on, so the service times nothing otherwise.
 */
export function createPurchaseTimings(registry: Registry): PurchaseTimings {
  const claim = new Histogram({
    name: 'payonce_claim_duration_seconds',
    help: 'Time to claim an idempotency key in the store backend, by result: claimed, held (by an earlier purchase), error.',
    labelNames: ['result'] as const,
    buckets: ROUND_TRIP_BUCKETS,
    registers: [registry],
  });
  const enqueue = new Histogram({
    name: 'payonce_enqueue_duration_seconds',
    help: 'Time to enqueue an accepted purchase job, by result: queued, error.',
    labelNames: ['result'] as const,
    buckets: ROUND_TRIP_BUCKETS,
    registers: [registry],
  });
  // Every series exists from the start, so rate() sees its first increase.
  for (const result of ['claimed', 'held', 'error'] as const) claim.zero({ result });
  for (const result of ['queued', 'error'] as const) enqueue.zero({ result });
  return {
    claim: (seconds, result) => claim.observe({ result }, seconds),
    enqueue: (seconds, result) => enqueue.observe({ result }, seconds),
  };
}
