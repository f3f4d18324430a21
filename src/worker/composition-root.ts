import type { SQSRecord } from 'aws-lambda';
import type { Config } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createResources } from '../shared/lifecycle.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { createPaymentsRepository } from '../shared/purchase/payments-repository.js';
import { closeRedis, createPersistentRedis } from '../shared/redis/connection.js';
import { bullmqPrefix } from '../shared/redis/keys.js';
import { createPurchaseStateStore } from '../shared/redis/purchase-state-store.js';
import { createGatewayDb, createSimulatedGateway } from './payment-gateway.js';
import { createPurchaseProcessor } from './process-purchase.js';
import type { SqsBatchHandler } from './sqs/batch-handler.js';
import type { SqsMessageSettler } from './sqs/message-settler.js';

/** Time past SHUTDOWN_TIMEOUT_MS for a transport to hand its jobs back and close. */
const TRANSPORT_CLOSE_MARGIN_MS = 5_000;

/**
 * The worker's composition root, called by the worker process and the Lambda entry: creates the
 * clients once (Postgres, and the Redis connection that waits out reconnects, as BullMQ's
 * production guide requires), wires the purchase step, and returns a `close()` that undoes it all
 * in reverse order (the transport first, then Redis, then Postgres), each step guarded. The
 * transport that feeds the step is started by the entry that needs it: `startTransport` for the
 * long-running process, `createSqsBatchHandler` for Lambda. Each driver's modules (and the AWS
 * SDK) load only when chosen.
 */
export function composeWorker(config: Config, options: { logger?: Logger } = {}) {
  const logger = options.logger ?? createLogger(config, 'payonce-worker');
  const resources = createResources(logger, { stepTimeoutMs: config.SHUTDOWN_TIMEOUT_MS + TRANSPORT_CLOSE_MARGIN_MS });
  const db = resources.own('postgres', createDb(config), (db) => db.destroy());
  const redis = resources.own('redis', createPersistentRedis(config, logger, 'worker'), closeRedis);
  const gatewayDb = resources.own('gateway postgres', createGatewayDb(config), (gatewayDb) => gatewayDb.destroy());
  const processor = createPurchaseProcessor({
    payments: createPaymentsRepository({ db }),
    states: createPurchaseStateStore({
      redis,
      prefix: config.REDIS_KEY_PREFIX,
      claimTtlSeconds: config.IDEMPOTENCY_TTL_SECONDS,
    }),
    gateway: createSimulatedGateway({
      db: gatewayDb,
      delayMs: config.PAYMENT_DELAY_MS,
      declineRate: config.PAYMENT_DECLINE_RATE,
    }),
    logger,
  });

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
    });
  }

  return {
    logger,
    processor,
    clients: { db, redis },

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
        connection: redis,
        queueName: config.QUEUE_NAME,
        prefix: bullmqPrefix(config.REDIS_KEY_PREFIX),
        processor,
        logger,
        concurrency: config.WORKER_CONCURRENCY,
        stalledIntervalMs: config.STALLED_INTERVAL_MS,
        lockDurationMs: config.LOCK_DURATION_MS,
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

    close: () => resources.close(),
  };
}

export type WorkerRoot = ReturnType<typeof composeWorker>;
