import type { Config } from '../config.js';
import type { RedisClient } from '../redis/connection.js';
import type { BullmqStore } from './bullmq-store.js';
import type { PurchaseProducer } from './purchase-producer.js';

/** What a producer needs of the stores: BullMQ's, and Redis (the SQS producer's records; Redis backend only). */
export interface ProducerStores {
  bullmq: BullmqStore;
  redis?: RedisClient | undefined;
}

/**
 * The purchase producer of the configured queue driver, for the API and the worker's reconciler.
 * Each driver's module is loaded only when chosen, so a BullMQ deployment never loads the AWS SDK
 * and the Lambda bundles ship without BullMQ. The SQS producer keeps its deduplication records in
 * the Redis backend's connection (config makes sure SQS runs with that backend). Closing the
 * producer closes what this made (the queue, or the SQS client), never the stores' connections.
 */
export async function createPurchaseProducer(config: Config, stores: ProducerStores): Promise<PurchaseProducer> {
  if (config.QUEUE_DRIVER === 'sqs') {
    if (config.STORE_BACKEND !== 'redis' || !stores.redis) throw new Error('the SQS producer needs the Redis backend');
    const { createSqsClient } = await import('./sqs-client.js');
    const { createSqsPurchaseProducer, sqsRememberSeconds } = await import('./sqs-purchase-producer.js');
    const sqs = createSqsClient({ requestTimeoutMs: 5_000 });
    const producer = createSqsPurchaseProducer({
      sqs,
      // The config schema requires the URL with this driver.
      queueUrl: config.SQS_QUEUE_URL!,
      redis: stores.redis,
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
  return purchaseProducerFromConfig(config, stores.bullmq);
}
