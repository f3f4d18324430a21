import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedUserAndProduct } from '../support/services.js';
import { createPurchaseClient, purchaseIdIn, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

describe.each(STORE_BACKENDS)('declined payment (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    client = createPurchaseClient((await stack.startApi()).url);
    await stack.startWorker({ PAYMENT_DECLINE_RATE: '1' });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('ends failed with card_declined in one payments row, and a duplicate still gets 204', async () => {
    const { userId, productId, price } = await seedUserAndProduct(stack.db);
    const accepted = await client.purchase({ userId, productId });
    expect(accepted.status).toBe(202);
    const purchaseId = purchaseIdIn(accepted.headers.get('location'));

    const finished = await client.purchaseReaches(purchaseId, ['succeeded', 'failed']);

    expect(finished).toMatchObject({ purchaseId, status: 'failed', failureReason: 'card_declined', amount: price });
    const duplicate = await client.purchase({ userId, productId });
    expect(duplicate.status).toBe(204);
    expect(purchaseIdIn(duplicate.headers.get('location'))).toBe(purchaseId);
    const jobs = await stack.queueDrained();
    // A decline is final: the job ran once and was not retried or failed over to another attempt.
    expect(jobs).toMatchObject({ completed: 1, failed: 0 });
    const rows = await stack.payments({ user_id: userId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: purchaseId, status: 'failed', failure_reason: 'card_declined', amount: price });
  });

  it('answers a waiting client 200 with the failed purchase', async () => {
    const { userId, productId } = await seedUserAndProduct(stack.db);

    const result = await client.purchase({ userId, productId }, { prefer: 'wait=20' });

    expect(result.status).toBe(200);
    expect(result.headers.get('preference-applied')).toBe('wait=20');
    expect(result.body).toMatchObject({ userId, productId, status: 'failed', failureReason: 'card_declined' });
    expect(await stack.payments({ user_id: userId })).toMatchObject([
      { id: result.body?.purchaseId, status: 'failed', failure_reason: 'card_declined' },
    ]);
  });
});
