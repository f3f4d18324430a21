import closeWithGrace from 'close-with-grace';
import { loadProcessConfigOrExit, type Config } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { closeWhenParentExits } from '../shared/parent-process.js';
import { bullmqPrefix } from '../shared/redis/keys.js';
import { closeRedis, createPersistentRedis, type Redis } from '../shared/redis/connection.js';
import { closeWorkerWithin, createBullmqPurchaseWorker } from './bullmq-purchase-worker.js';
import type { PurchaseProcessor } from './process-purchase.js';
import { purchaseProcessorFromConfig } from './purchase-processor-from-config.js';

/** A running transport: feeds jobs to the step until closed. */
interface Transport {
  /** Stops taking jobs and finishes those in flight within SHUTDOWN_TIMEOUT_MS. */
  close(): Promise<void>;
}

/** The worker process: consumes purchase jobs until SIGTERM/SIGINT, then drains and exits 0. */
async function main(config: Config): Promise<void> {
  const logger = createLogger(config, 'payonce-worker');
  const db = createDb(config);
  const redis = createPersistentRedis(config, logger, 'worker');
  const processor = purchaseProcessorFromConfig(config, { db, redis, logger });
  const transport =
    config.QUEUE_DRIVER === 'sqs'
      ? await startSqsTransport(config, processor, logger)
      : startBullmqTransport(config, processor, redis, logger);

  const { close } = closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS + 5_000, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'fatal error; shutting down');
    else logger.info({ signal }, 'shutting down: finishing in-flight jobs');
    await transport.close();
    await closeRedis(redis);
    await db.destroy();
    logger.info('shut down cleanly');
  });
  closeWhenParentExits(close, logger);

  logger.info(
    {
      driver: config.QUEUE_DRIVER,
      queue: config.QUEUE_DRIVER === 'sqs' ? config.SQS_QUEUE_URL : config.QUEUE_NAME,
      concurrency: config.WORKER_CONCURRENCY,
    },
    'worker started',
  );
}

function startBullmqTransport(config: Config, processor: PurchaseProcessor, redis: Redis, logger: Logger): Transport {
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
  void worker.run().catch((error: unknown) => logger.error({ err: error }, 'worker stopped'));
  return { close: () => closeWorkerWithin(worker, config.SHUTDOWN_TIMEOUT_MS, logger) };
}

/** The SQS poller; its modules (and the AWS SDK) load only with QUEUE_DRIVER=sqs. */
async function startSqsTransport(config: Config, processor: PurchaseProcessor, logger: Logger): Promise<Transport> {
  const { createSqsClient } = await import('../shared/queue/sqs-client.js');
  const { sqsMessageSettlerFromConfig } = await import('./sqs-purchase-message.js');
  const { createSqsPurchaseWorker } = await import('./sqs-purchase-worker.js');
  // A long poll holds its request for up to SQS_WAIT_TIME_SECONDS.
  const sqs = createSqsClient({ requestTimeoutMs: (config.SQS_WAIT_TIME_SECONDS + 10) * 1_000 });
  const worker = createSqsPurchaseWorker({
    sqs,
    queueUrl: config.SQS_QUEUE_URL!,
    settle: sqsMessageSettlerFromConfig(config, processor, logger),
    logger,
    concurrency: config.WORKER_CONCURRENCY,
    waitTimeSeconds: config.SQS_WAIT_TIME_SECONDS,
    visibilityTimeoutSeconds: config.SQS_VISIBILITY_TIMEOUT_SECONDS,
  });
  void worker.run().catch((error: unknown) => logger.error({ err: error }, 'worker stopped'));
  return {
    async close() {
      try {
        await worker.close(config.SHUTDOWN_TIMEOUT_MS);
      } finally {
        sqs.destroy();
      }
    },
  };
}

await main(await loadProcessConfigOrExit());
