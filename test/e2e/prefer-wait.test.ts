import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedUserAndProduct } from '../support/services.js';
import { createPurchaseClient, purchaseIdIn, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

describe.each(STORE_BACKENDS)('Prefer: wait (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    client = createPurchaseClient((await stack.startApi()).url);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('answers 200 with the finished purchase when it finishes within the wait', async () => {
    const worker = await stack.startWorker({ PAYMENT_DELAY_MS: '200' });
    try {
      const { userId, productId, price } = await seedUserAndProduct(stack.db);

      const result = await client.purchase({ userId, productId }, { prefer: 'wait=20' });

      expect(result.status).toBe(200);
      expect(result.headers.get('preference-applied')).toBe('wait=20');
      expect(result.body).toMatchObject({ userId, productId, status: 'succeeded', amount: price, failureReason: null });
      const purchaseId = purchaseIdIn(result.headers.get('location'));
      expect(result.body?.purchaseId).toBe(purchaseId);
      expect(result.elapsedMs).toBeLessThan(20_000);
      const rows = await stack.payments({ id: purchaseId });
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: 'succeeded', amount: price });
    } finally {
      await worker.stop();
    }
  });

  it("is answered by the worker's announcement: with the fallback poll off, it still answers at once", async () => {
    // An API of its own whose status poll would first run in 10 minutes.
    const api = await stack.startApi({ WAIT_POLL_INTERVAL_MS: '600000' });
    const worker = await stack.startWorker({ PAYMENT_DELAY_MS: '200' });
    try {
      const { userId, productId } = await seedUserAndProduct(stack.db);

      const result = await createPurchaseClient(api.url).purchase({ userId, productId }, { prefer: 'wait=20' });

      expect(result.status).toBe(200);
      expect(result.body).toMatchObject({ userId, productId, status: 'succeeded' });
      expect(result.elapsedMs).toBeLessThan(5_000);
    } finally {
      await worker.stop();
      await api.stop();
    }
  });

  it('answers 202 after the wait when the payment takes longer, and the purchase still completes', async () => {
    await stack.startWorker({ PAYMENT_DELAY_MS: '3000' });
    const { userId, productId } = await seedUserAndProduct(stack.db);

    const result = await client.purchase({ userId, productId }, { prefer: 'wait=1' });

    expect(result.status).toBe(202);
    expect(result.headers.get('preference-applied')).toBeNull();
    // It did wait for the outcome before giving up.
    expect(result.elapsedMs).toBeGreaterThanOrEqual(950);
    expect(result.elapsedMs).toBeLessThan(3_000);
    const purchaseId = purchaseIdIn(result.headers.get('location'));
    expect(result.body).toEqual({ purchaseId, status: 'queued', statusUrl: `/payment/purchase/${purchaseId}` });
    expect(await stack.payments({ id: purchaseId })).toHaveLength(0);
    expect(await client.purchaseReaches(purchaseId, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded' });
    expect(await stack.payments({ id: purchaseId })).toHaveLength(1);
  });
});
