import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSuffix, scratchAccountId, seedProducts, seedUsers } from '../support/services.js';
import { createPurchaseClient, purchaseIdIn, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

describe.each(STORE_BACKENDS)('unknown user or product (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    client = createPurchaseClient((await stack.startApi()).url);
    await stack.startWorker();
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('answers 422, writes nothing and claims no key, so the purchase goes through once both exist', async () => {
    const [userId] = (await seedUsers(stack.db, 1)) as [number];
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    // Far above what the serial columns hand out in a fresh database.
    const missingUserId = 1_000_000 + Math.floor(Math.random() * 1_000_000);
    const missingProductId = 1_000_000 + Math.floor(Math.random() * 1_000_000);
    const idempotencyKey = `order-${randomSuffix()}`;

    const unknownUser = await client.purchase({ userId: missingUserId, productId });
    const unknownProduct = await client.purchase({ userId, productId: missingProductId }, { idempotencyKey });
    const unknownBoth = await client.purchase({ userId: missingUserId, productId: missingProductId });

    expect(unknownUser.status).toBe(422);
    expect(unknownUser.body).toMatchObject({ statusCode: 422, code: 'USER_NOT_FOUND' });
    expect(unknownProduct.status).toBe(422);
    expect(unknownProduct.body).toMatchObject({ statusCode: 422, code: 'PRODUCT_NOT_FOUND' });
    expect(unknownBoth.status).toBe(422);
    expect(['USER_NOT_FOUND', 'PRODUCT_NOT_FOUND']).toContain(unknownBoth.body?.code);
    // No claim, no in-flight record, no accepted purchase, whichever backend.
    expect(await stack.claims()).toEqual([]);
    expect(await stack.keys('purchase:*')).toEqual([]);
    expect(await stack.db('purchases')).toEqual([]);
    expect(await stack.jobCounts()).toMatchObject({ waiting: 0, active: 0, completed: 0, failed: 0 });
    expect(await stack.payments()).toEqual([]);

    const account_id = await scratchAccountId(stack.db);
    await stack.db('users').insert({ id: missingUserId, account_id, username: `late_${randomSuffix()}` });
    await stack.db('products').insert({ id: missingProductId, account_id, name: `late ${randomSuffix()}`, price: 700 });
    const retriedUser = await client.purchase({ userId: missingUserId, productId });
    const retriedProduct = await client.purchase({ userId, productId: missingProductId }, { idempotencyKey });

    expect([retriedUser.status, retriedProduct.status]).toEqual([202, 202]);
    const ids = [retriedUser, retriedProduct].map((result) => purchaseIdIn(result.headers.get('location')));
    for (const id of ids) {
      expect(await client.purchaseReaches(id, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded' });
    }
    const rows = await stack.payments();
    expect(rows.map((row) => [row.id, row.user_id, row.product_id]).sort()).toEqual(
      [
        [ids[0], missingUserId, productId],
        [ids[1], userId, missingProductId],
      ].sort(),
    );
  });
});
