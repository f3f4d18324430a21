import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createDb } from '../src/shared/db.js';
import { idempotencyKeyFor } from '../src/shared/purchase/idempotency.js';
import type { PurchaseJob } from '../src/shared/purchase/purchase.js';
import { bullmqPrefix } from '../src/shared/redis/keys.js';
import { purchaseProducerFromConfig } from '../src/shared/queue/bullmq-purchase-producer.js';
import { loadRedisConfigOrExit } from './bullmq-worker-process.js';
import { servePurchases } from './purchase-route.js';

/**
 * The accept path a user would write instead of payonce, from the same packages: per request one
 * `SET NX` of the idempotency key (204 when it was taken), one product lookup, BullMQ's add
 * (payonce's producer, so the same job options and deduplication id) and one insert into
 * `purchases`. Nothing more: no ordering of the durable write before the enqueue, no in-flight
 * record, no release of the key when a later step fails, no check that the user exists or that
 * a replay has the same body, no `Location` on a 204, no `Prefer: wait`. The bench compares
 * payonce's accept and duplicate paths with it.
 */
const config = loadRedisConfigOrExit();
const redis = new Redis(config.REDIS_URL);
redis.on('error', () => {});
const producer = purchaseProducerFromConfig(config, {
  backend: 'redis',
  connection: redis,
  prefix: bullmqPrefix(config.REDIS_KEY_PREFIX),
});
const db = createDb(config);
const claimTtlMs = config.IDEMPOTENCY_TTL_SECONDS * 1000;

await servePurchases({
  host: config.HOST,
  port: config.PORT,
  logLevel: config.LOG_LEVEL,
  async decide({ userId, productId, headerKey }) {
    // The key first, as such a handler usually reads: a duplicate costs one Redis command. A
    // product that turns out missing leaves its key taken (nothing gives a key back).
    const purchaseId = randomUUID();
    const idempotencyKey = idempotencyKeyFor({ userId, productId, headerKey });
    const claimed = await redis.set(
      `${config.REDIS_KEY_PREFIX}:naive-idem:${idempotencyKey}`,
      purchaseId,
      'PX',
      claimTtlMs,
      'NX',
    );
    if (claimed === null) return { accepted: false };
    const product = await db('products')
      .where({ id: productId })
      .first<{ price: number; account_id: number } | undefined>('price', 'account_id');
    if (!product) throw Object.assign(new Error(`product ${productId} not found`), { statusCode: 404 });
    const job: PurchaseJob = {
      purchaseId,
      userId,
      productId,
      amount: product.price,
      idempotencyKey,
      acceptedAt: new Date().toISOString(),
    };
    await producer.enqueuePurchase(job);
    await db('purchases').insert({
      id: purchaseId,
      account_id: product.account_id,
      user_id: userId,
      product_id: productId,
      amount: product.price,
      idempotency_key: idempotencyKey,
      accepted_at: job.acceptedAt,
    });
    return { accepted: true, purchaseId };
  },
  close: async () => {
    await producer.close();
    await redis.quit();
    await db.destroy();
  },
});
