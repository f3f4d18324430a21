import { randomUUID } from 'node:crypto';
import { loadConfigOrExit } from '../src/shared/config.js';
import { createDb } from '../src/shared/db.js';
import { idempotencyKeyFor } from '../src/shared/purchase/idempotency.js';
import type { PurchaseJob } from '../src/shared/purchase/purchase.js';
import { purchaseProducerFromConfig } from '../src/shared/queue/bullmq-purchase-producer.js';
import { openBaselineStore } from './bullmq-worker-process.js';
import { servePurchases } from './purchase-route.js';

/**
 * The accept path a user would write instead of payonce, from the same packages, on the
 * configured backend: per request one claim of the idempotency key (204 when it was taken), one
 * product lookup, BullMQ's add (payonce's producer, so the same job options and deduplication
 * id) and one insert into `purchases`. On Redis the claim is a `SET NX PX` and the queue BullMQ's
 * Redis backend; on Postgres (no Redis) the claim is an `insert … on conflict do nothing` into a
 * table of the service's own and the queue BullMQ's PostgreSQL backend. Nothing more: no
 * ordering of the durable write before the enqueue, no in-flight record, no release of the key
 * when a later step fails, no check that the user exists or that a replay has the same body, no
 * `Location` on a 204, no `Prefer: wait`. The bench compares payonce's accept and duplicate paths
 * with it, backend by backend.
 */
const config = loadConfigOrExit();
const baseline = openBaselineStore(config);
const producer = purchaseProducerFromConfig(config, baseline.store);
const db = createDb(config);
const claimTtlMs = config.IDEMPOTENCY_TTL_SECONDS * 1000;

/** Whether `key` was free and is now this purchase's. */
let claimKey: (key: string, purchaseId: string) => Promise<boolean>;
if (baseline.redis) {
  const redis = baseline.redis;
  claimKey = async (key, purchaseId) =>
    (await redis.set(`${config.REDIS_KEY_PREFIX}:naive-idem:${key}`, purchaseId, 'PX', claimTtlMs, 'NX')) !== null;
} else {
  // The table such a service would migrate. Its keys never expire (a user would sweep old rows
  // by `created_at`), where Redis forgets them after the TTL: the bench sends either a fresh
  // key per request or one key throughout, so it never tells the two apart.
  await db.raw(
    `create table if not exists naive_idempotency_keys (
       key text primary key,
       purchase_id uuid not null,
       created_at timestamptz not null default now()
     )`,
  );
  claimKey = async (key, purchaseId) => {
    const result = await db.raw<{ rowCount: number }>(
      'insert into naive_idempotency_keys (key, purchase_id) values (?, ?) on conflict (key) do nothing',
      [key, purchaseId],
    );
    return result.rowCount === 1;
  };
}

await servePurchases({
  host: config.HOST,
  port: config.PORT,
  logLevel: config.LOG_LEVEL,
  async decide({ userId, productId, headerKey }) {
    // The key first, as such a handler usually reads: a duplicate costs one command or
    // statement. A product that turns out missing leaves its key taken (nothing gives a key back).
    const purchaseId = randomUUID();
    const idempotencyKey = idempotencyKeyFor({ userId, productId, headerKey });
    if (!(await claimKey(idempotencyKey, purchaseId))) return { accepted: false };
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
    await baseline.close();
    await db.destroy();
  },
});
