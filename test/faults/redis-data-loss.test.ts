import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPurchaseClient, type PurchaseClient } from '../support/purchase-client.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import {
  acceptPurchases,
  allReach,
  expectChargedOnceEach,
  expectOnePaymentEach,
  processingCount,
  runReconcile,
} from '../support/fault-kit.js';
import { deleteKeys, seedProducts, seedUsers } from '../support/services.js';
import type { RunningProcess } from '../support/processes.js';

/**
 * Issue 9, item 6: Redis loses everything (a failover to a replica that had not received the
 * writes, a restart without AOF, an operator's FLUSHALL: here every key under the stack's
 * prefix) with purchases queued and in flight. Every purchase that got 202 must still end
 * succeeded, charged once, found by its status URL and by its row. A Redis-backend behaviour:
 * the Postgres backend keeps claims, in-flight state and the queue in the one database.
 */
describe('Redis loses its data (Redis backend only)', () => {
  let stack: ProcessStack;
  let client: PurchaseClient;
  let productId: number;

  beforeAll(async () => {
    stack = await createProcessStack({ backend: 'redis' });
    client = createPurchaseClient((await stack.startApi()).url);
    [productId] = (await seedProducts(stack.db, 1)) as [number];
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('the worker reconciler completes every accepted purchase, queued or in flight, exactly once', async () => {
    const worker = await stack.startWorker({
      PAYMENT_DELAY_MS: '1000',
      WORKER_CONCURRENCY: '5',
      RECONCILE_INTERVAL_MS: '1000',
      RECONCILE_AFTER_SECONDS: '2',
    });
    try {
      const users = await seedUsers(stack.db, 20);
      const ids = await acceptPurchases(
        client,
        users.map((userId) => ({ userId, productId })),
      );
      // Five are being charged, fifteen wait in the queue: then Redis forgets all of it.
      await processingCount(client, ids, 5);
      await deleteKeys(stack.prefix);

      for (const id of ids) expect((await client.getPurchase(id)).status, id).toBe(200);
      // The README's bound: RECONCILE_AFTER_SECONDS plus one interval, plus the charges.
      await allReach(client, ids, ['succeeded'], { timeoutMs: 30_000 });
      await expectOnePaymentEach(stack, ids);
      await expectChargedOnceEach(stack.db, ids, { nothingElse: true });
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it('npm run reconcile enqueues the lost purchases at once and says so', async () => {
    const users = await seedUsers(stack.db, 5);
    const ids = await acceptPurchases(
      client,
      users.map((userId) => ({ userId, productId })),
    );
    await deleteKeys(stack.prefix);
    const report = await runReconcile(stack);
    expect(report.requeued.sort()).toEqual([...ids].sort());

    let worker: RunningProcess | undefined;
    try {
      worker = await stack.startWorker({ RECONCILE_INTERVAL_MS: '0' });
      await allReach(client, ids, ['succeeded'], { timeoutMs: 20_000 });
      await expectChargedOnceEach(stack.db, ids);
    } finally {
      await worker?.stop();
    }
  }, 60_000);
});
