import type { SQSRecord } from 'aws-lambda';
import type { Config } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createResources } from '../shared/lifecycle.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { createPaymentsRepository } from '../shared/purchase/payments-repository.js';
import { createPurchasesRepository } from '../shared/purchase/purchases-repository.js';
import { createPurchaseProducer } from '../shared/queue/create-purchase-producer.js';
import { SQS_DEDUPLICATION_WINDOW_SECONDS } from '../shared/queue/sqs-deduplication.js';
import { openPurchaseStores } from '../shared/stores.js';
import type { WorkerMetrics } from './metrics.js';
import { createChargeLookup, createGatewayDb, createSimulatedGateway } from './payment-gateway.js';
import { createPurchaseProcessor } from './process-purchase.js';
import { createWebhookDeliveriesRepository } from '../shared/webhooks/deliveries-repository.js';
import { createWebhookDispatcher } from './webhooks/dispatcher.js';
import { sendWebhook } from './webhooks/send.js';
import { createReconciler, type JobInspector, type Reconciler, type ReconcileReport } from './reconciler.js';
import type { SqsBatchHandler } from './sqs/batch-handler.js';
import type { SqsMessageSettler } from './sqs/message-settler.js';

/** Time past SHUTDOWN_TIMEOUT_MS for a transport to hand its jobs back and close. */
const TRANSPORT_CLOSE_MARGIN_MS = 5_000;

/**
 * How long an SQS message may keep coming back: every receive's visibility timeout and every
 * retry's backoff, as the settler computes them, and never less than SQS's deduplication window
 * plus a minute (a send within it would be dropped as a duplicate of the first). Past it, a
 * purchase without a payment has no message left, so the reconciler may send it again.
 */
export function sqsRetryHorizonSeconds(
  config: Pick<
    Config,
    'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS' | 'SQS_MAX_BACKOFF_SECONDS' | 'SQS_VISIBILITY_TIMEOUT_SECONDS'
  >,
): number {
  let seconds = 0;
  for (let receive = 1; receive <= config.JOB_ATTEMPTS; receive++) {
    const backoff = Math.ceil((config.JOB_BACKOFF_MS * 2 ** Math.min(receive - 1, 30)) / 1000);
    seconds += config.SQS_VISIBILITY_TIMEOUT_SECONDS + Math.min(backoff, config.SQS_MAX_BACKOFF_SECONDS);
  }
  return Math.max(seconds, SQS_DEDUPLICATION_WINDOW_SECONDS + 60);
}

/** How many connections the reconciler's own BullMQ queues (producer and inspector) open at most, on Postgres. */
const RECONCILER_QUEUE_POOL_MAX = 2;

export interface WorkerRootOptions {
  /** The process's logger. Default: one made from the config, named `payonce-worker`. */
  logger?: Logger;
  /**
   * Where the purchase step, the retry classification and the reconciler count what they do
   * (`createWorkerMetrics`; the worker process serves them, see process-root.ts). Default: none.
   */
  metrics?: WorkerMetrics;
}

/**
 * The worker's composition root, called by the worker process and the Lambda entry: creates the
 * clients once (Postgres, and the store backend's: on Redis a connection that waits out
 * reconnects, as BullMQ's production guide requires), wires the purchase step, and returns a
 * `close()` that undoes it all in reverse order (the transport first, then the store backend,
 * then Postgres), each step guarded. The
 * transport that feeds the step is started by the entry that needs it: `startTransport` for the
 * long-running process, `createSqsBatchHandler` for Lambda. Each driver's modules (and the AWS
 * SDK) load only when chosen.
 */
export function composeWorker(config: Config, options: WorkerRootOptions = {}) {
  const { metrics } = options;
  const logger = options.logger ?? createLogger(config, 'payonce-worker');
  const resources = createResources(logger, { stepTimeoutMs: config.SHUTDOWN_TIMEOUT_MS + TRANSPORT_CLOSE_MARGIN_MS });
  const db = resources.own('postgres', createDb(config), (db) => db.destroy());
  const stores = openPurchaseStores(config, { db, logger, resources, role: 'worker' });
  const gatewayDb = resources.own('gateway postgres', createGatewayDb(config), (gatewayDb) => gatewayDb.destroy());
  const payments = createPaymentsRepository({ db });
  const isCharged = createChargeLookup(gatewayDb);
  const { states } = stores;
  // The reconciler's queues are few and quiet: on Postgres they get small pools of their own.
  const reconcilerStores =
    stores.bullmq.backend === 'postgres'
      ? { ...stores, bullmq: { ...stores.bullmq, poolMax: RECONCILER_QUEUE_POOL_MAX } }
      : stores;
  const processor = createPurchaseProcessor({
    payments,
    states,
    gateway: createSimulatedGateway({
      db: gatewayDb,
      delayMs: config.PAYMENT_DELAY_MS,
      declineRate: config.PAYMENT_DECLINE_RATE,
    }),
    logger,
    metrics,
  });

  let reconciler: Promise<Reconciler> | undefined;
  /** The reconciler, made on first use: it needs a producer and a view of the queue. */
  function getReconciler(): Promise<Reconciler> {
    reconciler ??= (async () => {
      const producer = resources.own(
        'reconciler producer',
        await createPurchaseProducer(config, reconcilerStores),
        (p) => p.close(),
      );
      let jobs: JobInspector = { jobState: async () => 'unknown', discardFailed: async () => {} };
      if (config.QUEUE_DRIVER === 'bullmq') {
        const { createBullmqJobInspector } = await import('./bullmq/job-inspector.js');
        jobs = resources.own(
          'reconciler queue',
          createBullmqJobInspector({ store: reconcilerStores.bullmq, queueName: config.QUEUE_NAME }),
          (inspector) => inspector.close(),
        );
      }
      return createReconciler({
        purchases: createPurchasesRepository({ db }),
        payments,
        states,
        idempotency: stores.idempotency,
        producer,
        jobs,
        isCharged,
        logger,
        metrics,
      });
    })();
    return reconciler;
  }

  /** The webhook dispatcher (src/worker/webhooks/), as configured. */
  function webhookDispatcher() {
    return createWebhookDispatcher({
      deliveries: createWebhookDeliveriesRepository({ db }),
      send: (url, headers, body) =>
        sendWebhook(url, headers, body, {
          timeoutMs: config.WEBHOOK_TIMEOUT_MS,
          allowedHosts: config.WEBHOOK_ALLOWED_HOSTS,
        }),
      logger,
      concurrency: config.WEBHOOK_CONCURRENCY,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      leaseMarginMs: config.WEBHOOK_LEASE_MARGIN_MS,
      retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
      retryHours: config.WEBHOOK_RETRY_HOURS,
    });
  }

  /** One reconciliation of the purchases accepted more than `afterSeconds` ago (on SQS: the retry horizon). */
  async function reconcile(afterSeconds = config.RECONCILE_AFTER_SECONDS): Promise<ReconcileReport> {
    const horizon =
      config.QUEUE_DRIVER === 'sqs' ? Math.max(afterSeconds, sqsRetryHorizonSeconds(config)) : afterSeconds;
    return (await getReconciler()).reconcile({ acceptedBefore: new Date(Date.now() - horizon * 1000) });
  }

  /** The SQS settler: the purchase step and the retry classification for one message. */
  async function sqsSettler(): Promise<SqsMessageSettler> {
    const { createSqsMessageSettler } = await import('./sqs/message-settler.js');
    // On Lambda the infrastructure sets JOB_ATTEMPTS to the queue's maxReceiveCount, so the last
    // receive records the failure.
    return createSqsMessageSettler({
      processor,
      logger,
      attempts: config.JOB_ATTEMPTS,
      backoffMs: config.JOB_BACKOFF_MS,
      maxBackoffSeconds: config.SQS_MAX_BACKOFF_SECONDS,
      isCharged,
      metrics,
    });
  }

  return {
    logger,
    processor,
    clients: { db, redis: stores.redis },
    /** What the worker process's `/health/ready` asks: Postgres and the store backend. */
    readinessChecks: [{ name: 'postgres', check: () => db.raw('select 1') }, ...stores.readinessChecks],

    /** Starts feeding jobs from the configured queue to the step, until `close()`. */
    async startTransport(): Promise<void> {
      if (config.QUEUE_DRIVER === 'sqs') {
        const { createSqsClient } = await import('../shared/queue/sqs-client.js');
        const { createSqsPurchaseWorker } = await import('./sqs/poller.js');
        // A long poll holds its request for up to SQS_WAIT_TIME_SECONDS.
        const sqs = resources.own(
          'sqs client',
          createSqsClient({ requestTimeoutMs: (config.SQS_WAIT_TIME_SECONDS + 10) * 1_000 }),
          (sqs) => sqs.destroy(),
        );
        const poller = createSqsPurchaseWorker({
          sqs,
          queueUrl: config.SQS_QUEUE_URL!,
          settle: await sqsSettler(),
          logger,
          concurrency: config.WORKER_CONCURRENCY,
          waitTimeSeconds: config.SQS_WAIT_TIME_SECONDS,
          visibilityTimeoutSeconds: config.SQS_VISIBILITY_TIMEOUT_SECONDS,
        });
        resources.own('sqs poller', poller, (poller) => poller.close(config.SHUTDOWN_TIMEOUT_MS));
        void poller.run().catch((error: unknown) => logger.error({ err: error }, 'worker stopped'));
        return;
      }
      // Loaded only here: the Lambda bundles ship without BullMQ.
      const { closeWorkerWithin, createBullmqPurchaseWorker } = await import('./bullmq/purchase-worker.js');
      const worker = createBullmqPurchaseWorker({
        store: stores.bullmq,
        queueName: config.QUEUE_NAME,
        processor,
        logger,
        concurrency: config.WORKER_CONCURRENCY,
        stalledIntervalMs: config.STALLED_INTERVAL_MS,
        lockDurationMs: config.LOCK_DURATION_MS,
        isCharged,
        metrics,
      });
      resources.own('bullmq worker', worker, (worker) => closeWorkerWithin(worker, config.SHUTDOWN_TIMEOUT_MS, logger));
      void worker.run().catch((error: unknown) => logger.error({ err: error }, 'worker stopped'));
    },

    /**
     * The Lambda side of the SQS queue: a batch handler whose unattempted records are released
     * at once (ChangeMessageVisibility to 0) instead of waiting out the visibility timeout.
     */
    async createSqsBatchHandler(): Promise<SqsBatchHandler> {
      const { createSqsClient } = await import('../shared/queue/sqs-client.js');
      const { createSqsBatchHandler } = await import('./sqs/batch-handler.js');
      const { releaseMessages } = await import('./sqs/visibility.js');
      const sqs = resources.own('sqs client', createSqsClient({ requestTimeoutMs: 5_000 }), (sqs) => sqs.destroy());
      const queueUrl = config.SQS_QUEUE_URL;
      return createSqsBatchHandler({
        settle: await sqsSettler(),
        logger,
        releaseUnattempted: queueUrl
          ? (records: SQSRecord[]) =>
              releaseMessages(
                sqs,
                queueUrl,
                records.map((record) => record.receiptHandle),
              )
          : undefined,
      });
    },

    reconcile,

    /**
     * Runs the webhook dispatcher (src/worker/webhooks/) every WEBHOOK_DISPATCH_INTERVAL_MS (0:
     * never) until `close()`, which lets the pass under way finish.
     */
    startWebhookDispatcher(): void {
      if (config.WEBHOOK_DISPATCH_INTERVAL_MS === 0) return;
      resources.own('webhook dispatcher', webhookDispatcher().start(config.WEBHOOK_DISPATCH_INTERVAL_MS), (running) =>
        running.stop(),
      );
    },

    /**
     * The Lambda side of the dispatcher (an EventBridge schedule, infra/webhooks.tf): passes until
     * nothing more is due or the invocation could not finish another one; resolves with how many
     * deliveries were attempted.
     */
    async dispatchWebhooks(remainingMs: () => number): Promise<{ attempted: number }> {
      const dispatcher = webhookDispatcher();
      let attempted = 0;
      while (remainingMs() > config.WEBHOOK_TIMEOUT_MS + 5_000) {
        const sent = await dispatcher.dispatchOnce();
        attempted += sent;
        if (sent < config.WEBHOOK_CONCURRENCY) break;
      }
      return { attempted };
    },

    /**
     * Runs `reconcile` every RECONCILE_INTERVAL_MS (0: never), one run at a time, until `close()`;
     * on the Postgres backend each run also sweeps long-expired claims and rate counters.
     */
    startReconciler(): void {
      if (config.RECONCILE_INTERVAL_MS === 0) return;
      let running: Promise<void> = Promise.resolve();
      let busy = false;
      const timer = setInterval(() => {
        if (busy) return;
        busy = true;
        running = reconcile()
          .then(async (report) => {
            if (report.requeued.length + report.superseded.length + report.dropped.length + report.errors > 0) {
              logger.warn({ ...report }, 'reconciled accepted purchases');
            }
            await stores.sweepExpired?.();
          })
          .catch((error: unknown) => logger.warn({ err: error }, 'reconciliation failed; trying again next time'))
          .finally(() => (busy = false));
      }, config.RECONCILE_INTERVAL_MS);
      resources.own('reconciler', timer, async (timer) => {
        clearInterval(timer);
        await running;
      });
    },

    close: () => resources.close(),
  };
}

export type WorkerRoot = ReturnType<typeof composeWorker>;
