import type { FastifyInstance } from 'fastify';
import { createAccountsRepository } from '../shared/accounts/accounts-repository.js';
import { createWebhookDeliveriesRepository } from '../shared/webhooks/deliveries-repository.js';
import { createWebhookEndpointsRepository } from '../shared/webhooks/endpoints-repository.js';
import type { Config } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createResources } from '../shared/lifecycle.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { createPaymentsRepository } from '../shared/purchase/payments-repository.js';
import { createPurchasesRepository } from '../shared/purchase/purchases-repository.js';
import type { BullmqStore } from '../shared/queue/bullmq-store.js';
import { createPurchaseProducer } from '../shared/queue/create-purchase-producer.js';
import type { PurchaseProducer } from '../shared/queue/purchase-producer.js';
import { createMetricsRegistry } from '../shared/http/metrics-endpoint.js';
import { openPurchaseStores } from '../shared/stores.js';
import { buildApp, type AppDeps } from './app.js';
import { apiKeyAuth } from './auth.js';
import { createProductsRepository } from './catalog/products-repository.js';
import { createPurchaseReferences } from './catalog/purchase-references.js';
import { createUsersRepository } from './catalog/users-repository.js';
import { createPurchaseTimings } from './metrics.js';
import { createPurchaseOutcomeWaiter } from './purchase-outcome-waiter.js';
import { createPurchaseService } from './purchase-service.js';
import { createPurchaseStatusStreams } from './purchase-status-streams.js';
import { createPurchaseWatches } from './purchase-watches.js';
import type { PreferWaitOptions } from './routes/purchases.js';

export interface ApiRootOptions {
  /** The process's logger. Default: one made from the config, named `payonce-api`. */
  logger?: Logger;
  /** Puts a step in front of the real queue producer (fault tests); the real one is still closed. */
  wrapProducer?: (producer: PurchaseProducer) => PurchaseProducer;
  /** How `Prefer: wait` is bounded (the Lambda entry keeps it inside API Gateway's timeout). Default: the server's. */
  wait?: PreferWaitOptions;
  /**
   * The longest an events stream stays open, in ms (the Lambda entry keeps it inside API
   * Gateway's timeout). Default: STATUS_STREAM_MAX_SECONDS.
   */
  maxStreamMs?: number;
}

/**
 * The purchase queue as a Queue of the dashboard's own, on the app's store backend; on Postgres
 * over a pool of two connections, which the dashboard's polls share.
 */
async function openBoardQueue(config: Config, store: BullmqStore) {
  // Loaded here, not at the top: the Lambda bundles leave BullMQ out.
  const { createQueue } = await import('../shared/queue/bullmq-store.js');
  return createQueue(config.QUEUE_NAME, store.backend === 'postgres' ? { ...store, poolMax: 2 } : store);
}

/**
 * The API's composition root, called by the server entry, the Lambda entry and the in-process
 * test stack: creates every client once, wires the services and the Fastify app (not listening),
 * and returns a `close()` that undoes it all in reverse order (HTTP drains first, then the
 * producer, the store backend's connections, Postgres), each step guarded.
 */
export async function composeApi(config: Config, options: ApiRootOptions = {}) {
  const logger = options.logger ?? createLogger(config, 'payonce-api');
  const resources = createResources(logger, { stepTimeoutMs: config.SHUTDOWN_TIMEOUT_MS });
  try {
    const db = resources.own('postgres', createDb(config), (db) => db.destroy());
    const stores = openPurchaseStores(config, { db, logger, resources, role: 'api' });
    const events = stores.openEvents();
    const producer = resources.own('queue producer', await createPurchaseProducer(config, stores), (producer) =>
      producer.close(),
    );

    const { idempotency, states } = stores;
    // One subscription to the worker's announcements, for `Prefer: wait` and the events streams.
    const watches = createPurchaseWatches({ events, logger });
    const waiter = createPurchaseOutcomeWaiter({
      watches,
      logger,
      maxWaiters: config.WAIT_MAX_WAITERS,
      pollIntervalMs: config.WAIT_POLL_INTERVAL_MS,
    });
    const statusStreams = createPurchaseStatusStreams({
      watches,
      logger,
      maxStreams: config.STATUS_STREAMS_MAX,
      maxDurationMs: options.maxStreamMs ?? config.STATUS_STREAM_MAX_SECONDS * 1000,
    });
    // Metrics exist only with ADMIN_TOKEN (nobody could scrape them otherwise): no timing without.
    const registry = config.ADMIN_TOKEN === undefined ? undefined : createMetricsRegistry();
    const purchases = createPurchaseService({
      idempotency,
      states,
      payments: createPaymentsRepository({ db }),
      purchases: createPurchasesRepository({ db }),
      references: createPurchaseReferences({ db }),
      producer: options.wrapProducer ? options.wrapProducer(producer) : producer,
      waiter,
      logger,
      timings: registry && createPurchaseTimings(registry),
    });
    const readinessChecks: AppDeps['readinessChecks'] = [
      { name: 'postgres', check: () => db.raw('select 1') },
      ...stores.readinessChecks,
      // BullMQ's queue lives in the stores above; SQS is a dependency of its own.
      ...(config.QUEUE_DRIVER === 'sqs' ? [{ name: 'queue', check: () => producer.ping() }] : []),
    ];

    // Bull Board reads the queue through a Queue of its own, closed after HTTP has drained. SQS has
    // no BullMQ queue, hence no board.
    const queueBoard =
      config.ADMIN_TOKEN !== undefined && config.QUEUE_DRIVER === 'bullmq'
        ? {
            adminToken: config.ADMIN_TOKEN,
            queue: resources.own('queue board', await openBoardQueue(config, stores.bullmq), (queue) => queue.close()),
          }
        : undefined;

    let shuttingDown = false;
    const app: FastifyInstance = resources.own(
      'http',
      await buildApp({
        authenticate: apiKeyAuth({ apiKeys: createAccountsRepository({ db }) }),
        rateLimit:
          config.RATE_LIMIT_MAX > 0 ? { counter: stores.rateCounter, maxPerSecond: config.RATE_LIMIT_MAX } : undefined,
        users: createUsersRepository({ db }),
        webhooks: {
          endpoints: createWebhookEndpointsRepository({ db }),
          deliveries: createWebhookDeliveriesRepository({ db }),
          allowedHosts: config.WEBHOOK_ALLOWED_HOSTS,
        },
        products: createProductsRepository({ db }),
        purchases,
        statusStreams,
        readinessChecks,
        isShuttingDown: () => shuttingDown,
        wait: options.wait,
        loadShedding:
          config.EVENT_LOOP_MAX_DELAY_MS === 0
            ? undefined
            : {
                maxEventLoopDelayMs: config.EVENT_LOOP_MAX_DELAY_MS,
                sampleIntervalMs: config.EVENT_LOOP_SAMPLE_INTERVAL_MS,
              },
        queueBoard,
        checkoutPage: { demoApiKey: config.DEMO_API_KEY },
        metrics:
          config.ADMIN_TOKEN === undefined || registry === undefined
            ? undefined
            : {
                adminToken: config.ADMIN_TOKEN,
                registry,
                queueDepth: producer.depth?.bind(producer),
                waiting: () => waiter.waiting(),
                streaming: () => statusStreams.streaming(),
                logger,
              },
        fastify: {
          loggerInstance: logger,
          bodyLimit: config.BODY_LIMIT_BYTES,
          requestTimeout: config.REQUEST_TIMEOUT_MS,
          connectionTimeout: config.CONNECTION_TIMEOUT_MS,
          http: {
            headersTimeout: config.HEADERS_TIMEOUT_MS,
            // Node enforces both bounds only when it checks its connections, every 30 s by default.
            connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(config.HEADERS_TIMEOUT_MS / 5))),
          },
        },
      }),
      (app) => app.close(), // stops accepting, then drains in-flight requests
    );
    // Closed before HTTP: waking the waiting requests (they answer 202) and ending the events
    // streams (their clients reconnect) lets HTTP drain.
    resources.own('outcome waiter', waiter, (waiter) => waiter.close());
    resources.own('events streams', statusStreams, (streams) => streams.close());

    return {
      app,
      logger,
      /** The clients, for entries that must wait on them and for tests that inspect them. */
      clients: { db, redis: stores.redis, producer },
      stores,
      /** The `Prefer: wait` registry, for tests and metrics (`waiting()`). */
      waiter,
      /** The events streams, for tests and metrics (`streaming()`). */
      statusStreams,
      /** Subscribes to purchase announcements (`Prefer: wait`, events streams); resolves once subscribed. */
      subscribe: (): Promise<unknown> => watches.start(),
      /** Readiness answers 503 from now on, so load balancers stop sending before HTTP closes. */
      beginShutdown(): void {
        shuttingDown = true;
      },
      close: () => resources.close(),
    };
  } catch (error) {
    await resources.close();
    throw error;
  }
}

export type ApiRoot = Awaited<ReturnType<typeof composeApi>>;
