import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from 'bullmq';
import { loadConfigOrExit } from '../src/shared/config.js';
import { createDb } from '../src/shared/db.js';
import type { PurchaseJob } from '../src/shared/purchase/purchase.js';
import { serveBullmqWorker } from './bullmq-worker-process.js';

/**
 * The worker a user would write instead of payonce's, from the same packages: per job the
 * simulated charge (PAYMENT_DELAY_MS) and one `insert into payments ... on conflict (id) do
 * nothing`, on the configured backend's queue (BullMQ on Redis, or its PostgreSQL backend). No
 * gateway ledger (a redelivered job is charged again), no status records, no announcement of
 * the outcome, no retry classification, no record of a purchase that cannot be written.
 */
const config = loadConfigOrExit();
const db = createDb(config);

await serveBullmqWorker(
  config,
  async ({ data }: Job<PurchaseJob>) => {
    if (config.PAYMENT_DELAY_MS > 0) await sleep(config.PAYMENT_DELAY_MS);
    await db('payments')
      .insert({
        id: data.purchaseId,
        user_id: data.userId,
        product_id: data.productId,
        amount: data.amount,
        status: 'succeeded',
        idempotency_key: data.idempotencyKey,
        accepted_at: data.acceptedAt,
      })
      .onConflict('id')
      .ignore();
  },
  () => db.destroy(),
);
