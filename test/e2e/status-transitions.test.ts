import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, seedUserAndProduct } from '../support/services.js';
import {
  createPurchaseClient,
  purchaseIdIn,
  type PurchaseClient,
  type PurchaseStatus,
  type PurchaseView,
} from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

describe.each(STORE_BACKENDS)('purchase status (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    client = createPurchaseClient((await stack.startApi()).url);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('moves queued -> processing -> succeeded, each status observed by a polling client', async () => {
    const { userId, productId, price } = await seedUserAndProduct(stack.db);
    // No worker yet, so the purchase is certainly still queued when first read.
    const accepted = await client.purchase({ userId, productId });
    expect(accepted.status).toBe(202);
    const purchaseId = purchaseIdIn(accepted.headers.get('location'));
    const queued = await client.getPurchase(purchaseId);
    expect(queued.status).toBe(200);
    expect(queued.body).toMatchObject({
      purchaseId,
      userId,
      productId,
      status: 'queued',
      amount: price,
      failureReason: null,
    });
    expect(await stack.payments({ id: purchaseId })).toHaveLength(0);

    await stack.startWorker({ PAYMENT_DELAY_MS: '1500' });
    const observed: PurchaseStatus[] = ['queued'];
    let rowsWhileProcessing: number | undefined;
    const final = await eventually(
      async () => {
        const { status, body } = await client.getPurchase(purchaseId);
        expect(status).toBe(200);
        const view = body as unknown as PurchaseView;
        if (view.status !== observed.at(-1)) observed.push(view.status);
        if (view.status === 'processing' && rowsWhileProcessing === undefined) {
          rowsWhileProcessing = (await stack.payments({ id: purchaseId })).length;
        }
        return view.status === 'succeeded' || view.status === 'failed' ? view : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'the purchase to finish' },
    );

    expect(observed).toEqual(['queued', 'processing', 'succeeded']);
    expect(rowsWhileProcessing).toBe(0);
    expect(final).toMatchObject({ purchaseId, userId, productId, amount: price, failureReason: null });
    expect(final.createdAt).toBe((queued.body as unknown as PurchaseView).createdAt);
    expect(Date.parse(final.updatedAt)).toBeGreaterThanOrEqual(Date.parse(final.createdAt));
    const rows = await stack.payments({ id: purchaseId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'succeeded', user_id: userId, product_id: productId });
  });

  it('answers 404 PURCHASE_NOT_FOUND for an unknown id and 400 for a malformed one', async () => {
    const unknown = await client.getPurchase(randomUUID());
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ statusCode: 404, code: 'PURCHASE_NOT_FOUND' });

    const malformed = await client.getPurchase('not-a-uuid');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ statusCode: 400, code: 'VALIDATION_FAILED' });
  });
});
