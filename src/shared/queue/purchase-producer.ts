import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { PurchaseJob } from '../purchase/purchase.js';

export interface EnqueueResult {
  /**
   * The purchase whose job holds the queue slot for this idempotency key: the job we sent, or,
   * when the queue collapsed it into an earlier job still pending under the same key, that one.
   */
  queuedPurchaseId: string;
}

/** Sends purchase jobs to whichever queue the deployment uses (BullMQ, or SQS on AWS). */
export interface PurchaseProducer {
  /**
   * Enqueues a purchase, deduplicated by its idempotency key. Rejects if the queue did not
   * take the job; the job is then not queued.
   */
  enqueuePurchase(job: PurchaseJob): Promise<EnqueueResult>;
  /** Answers whether the queue is reachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type ProducerConfig = Pick<
  Config,
  | 'QUEUE_DRIVER'
  | 'SQS_QUEUE_URL'
  | 'QUEUE_NAME'
  | 'REDIS_KEY_PREFIX'
  | 'JOB_ATTEMPTS'
  | 'JOB_BACKOFF_MS'
  | 'IDEMPOTENCY_TTL_SECONDS'
>;

/**
 * The purchase producer of the configured queue driver. Each driver's module is loaded only when
 * chosen, so a BullMQ deployment never loads the AWS SDK and the Lambda bundles ship without
 * BullMQ. `redis` is the API's connection: BullMQ's queue lives there, and the SQS producer keeps
 * its deduplication records there. Closing the producer closes what it created (the SQS client).
 */
export async function createPurchaseProducer(
  config: ProducerConfig,
  deps: { redis: Redis },
): Promise<PurchaseProducer> {
  if (config.QUEUE_DRIVER === 'sqs') {
    const { createSqsClient } = await import('./sqs-client.js');
    const { createSqsPurchaseProducer, sqsRememberSeconds } = await import('./sqs-purchase-producer.js');
    // The config schema requires the URL with this driver.
    const queueUrl = config.SQS_QUEUE_URL!;
    const sqs = createSqsClient({ requestTimeoutMs: 5_000 });
    const producer = createSqsPurchaseProducer({
      sqs,
      queueUrl,
      redis: deps.redis,
      prefix: config.REDIS_KEY_PREFIX,
      rememberSeconds: sqsRememberSeconds(config.IDEMPOTENCY_TTL_SECONDS),
    });
    // The producer owns nothing; the client made here is this producer's to close.
    return { ...producer, close: async () => sqs.destroy() };
  }
  const { purchaseProducerFromConfig } = await import('./bullmq-purchase-producer.js');
  return purchaseProducerFromConfig(config, deps.redis);
}
