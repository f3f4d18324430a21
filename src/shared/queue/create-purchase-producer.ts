import type { Config } from '../config.js';
import type { Redis } from '../redis/connection.js';
import type { PurchaseProducer } from './purchase-producer.js';

/**
 * The purchase producer of the configured queue driver, for the API and the worker's reconciler.
 * Each driver's module is loaded only when chosen, so a BullMQ deployment never loads the AWS SDK
 * and the Lambda bundles ship without BullMQ. `redis` is the caller's connection: BullMQ's queue
 * lives there, and the SQS producer keeps its deduplication records there. Closing the producer
 * closes what this made (the queue, or the SQS client), never `redis`.
 */
export async function createPurchaseProducer(config: Config, redis: Redis): Promise<PurchaseProducer> {
  if (config.QUEUE_DRIVER === 'sqs') {
    const { createSqsClient } = await import('./sqs-client.js');
    const { createSqsPurchaseProducer, sqsRememberSeconds } = await import('./sqs-purchase-producer.js');
    const sqs = createSqsClient({ requestTimeoutMs: 5_000 });
    const producer = createSqsPurchaseProducer({
      sqs,
      // The config schema requires the URL with this driver.
      queueUrl: config.SQS_QUEUE_URL!,
      redis,
      prefix: config.REDIS_KEY_PREFIX,
      rememberSeconds: sqsRememberSeconds(config.IDEMPOTENCY_TTL_SECONDS),
    });
    return {
      ...producer,
      async close() {
        await producer.close();
        sqs.destroy();
      },
    };
  }
  const { purchaseProducerFromConfig } = await import('./bullmq-purchase-producer.js');
  return purchaseProducerFromConfig(config, redis);
}
