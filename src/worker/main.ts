import closeWithGrace from 'close-with-grace';
import { loadConfigOrExit, type Config } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createLogger } from '../shared/logger.js';
import { createPaymentsRepository } from '../shared/purchase/payments-repository.js';
import { createPurchaseStateStore } from '../shared/purchase/purchase-state-store.js';
import { bullmqPrefix } from '../shared/queue/bullmq-purchase-producer.js';
import { closeRedis, createPersistentRedis } from '../shared/redis.js';
import { closeWorkerWithin, createBullmqPurchaseWorker } from './bullmq-purchase-worker.js';
import { createSimulatedGateway } from './payment-gateway.js';
import { createPurchaseProcessor } from './process-purchase.js';

/** The worker process: consumes purchase jobs until SIGTERM/SIGINT, then drains and exits 0. */
async function main(config: Config): Promise<void> {
  const logger = createLogger(config, 'payonce-worker');
  const db = createDb(config);
  const redis = createPersistentRedis(config, logger, 'worker');
  const processor = createPurchaseProcessor({
    payments: createPaymentsRepository({ db }),
    states: createPurchaseStateStore({
      redis,
      prefix: config.REDIS_KEY_PREFIX,
      finishedTtlSeconds: config.IDEMPOTENCY_TTL_SECONDS,
    }),
    gateway: createSimulatedGateway({
      delayMs: config.PAYMENT_DELAY_MS,
      declineRate: config.PAYMENT_DECLINE_RATE,
    }),
    logger,
  });
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

  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS + 5_000, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'fatal error; shutting down');
    else logger.info({ signal }, 'shutting down: finishing in-flight jobs');
    await closeWorkerWithin(worker, config.SHUTDOWN_TIMEOUT_MS, logger);
    await closeRedis(redis);
    await db.destroy();
    logger.info('shut down cleanly');
  });

  logger.info(
    { queue: config.QUEUE_NAME, concurrency: config.WORKER_CONCURRENCY },
    'worker started',
  );
  void worker.run().catch((error: unknown) => logger.error({ err: error }, 'worker stopped'));
}

await main(loadConfigOrExit());
