import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSuffix, seedProducts, seedUsers } from '../support/services.js';
import { createPurchaseClient, purchaseIdIn, statusCounts, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type JobCounts, type ProcessStack } from '../support/process-stack.js';

const jobsEver = (counts: JobCounts) =>
  counts.waiting + counts.prioritized + counts.delayed + counts.active + counts.completed + counts.failed;

describe.each(STORE_BACKENDS)('Idempotency-Key (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    const api = await stack.startApi();
    await stack.startWorker();
    client = createPurchaseClient(api.url);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('accepts one of 20 concurrent replays of a key and body and answers the rest with 204', async () => {
    const [userId] = (await seedUsers(stack.db, 1)) as [number];
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const idempotencyKey = `order-${randomSuffix()}`;

    const results = await Promise.all(
      Array.from({ length: 20 }, () => client.purchase({ userId, productId }, { idempotencyKey })),
    );

    expect(statusCounts(results)).toEqual({ 202: 1, 204: 19 });
    const purchaseId = purchaseIdIn(results.find((result) => result.status === 202)!.headers.get('location'));
    for (const result of results) expect(purchaseIdIn(result.headers.get('location'))).toBe(purchaseId);
    expect(await client.purchaseReaches(purchaseId, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded' });
    await stack.queueDrained();
    const rows = await stack.payments({ user_id: userId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: purchaseId, product_id: productId, status: 'succeeded' });
    expect(rows[0]!.idempotency_key).toContain(idempotencyKey);
  });

  it('rejects the same key with a different productId as IDEMPOTENCY_KEY_REUSED and enqueues nothing', async () => {
    const [userId] = (await seedUsers(stack.db, 1)) as [number];
    const [productId, otherProductId] = (await seedProducts(stack.db, 2)) as [number, number];
    const idempotencyKey = `order-${randomSuffix()}`;
    const first = await client.purchase({ userId, productId }, { idempotencyKey });
    expect(first.status).toBe(202);
    const purchaseId = purchaseIdIn(first.headers.get('location'));
    await client.purchaseReaches(purchaseId, ['succeeded', 'failed']);
    const jobsBefore = await stack.queueDrained();

    const reused = await client.purchase({ userId, productId: otherProductId }, { idempotencyKey });

    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ statusCode: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(reused.headers.get('location')).toBeNull();
    expect(jobsEver(await stack.jobCounts())).toBe(jobsEver(jobsBefore));
    // The key still belongs to the first purchase.
    const replay = await client.purchase({ userId, productId }, { idempotencyKey });
    expect(replay.status).toBe(204);
    expect(purchaseIdIn(replay.headers.get('location'))).toBe(purchaseId);
    await stack.queueDrained();
    expect(jobsEver(await stack.jobCounts())).toBe(jobsEver(jobsBefore));
    const rows = await stack.payments({ user_id: userId });
    expect(rows.map((row) => [row.id, row.product_id])).toEqual([[purchaseId, productId]]);
  });

  it('lets exactly one body win a key raced with two different bodies: its twins get 204, the others 422', async () => {
    const [userId] = (await seedUsers(stack.db, 1)) as [number];
    const productIds = (await seedProducts(stack.db, 2)) as [number, number];
    const idempotencyKey = `order-${randomSuffix()}`;
    const bodies = Array.from({ length: 20 }, (_, index) => ({ userId, productId: productIds[index % 2]! }));

    const results = await Promise.all(bodies.map((body) => client.purchase(body, { idempotencyKey })));

    expect(results.filter((result) => result.status === 202)).toHaveLength(1);
    const winner = results.findIndex((result) => result.status === 202);
    const purchaseId = purchaseIdIn(results[winner]!.headers.get('location'));
    results.forEach((result, index) => {
      if (index === winner) return;
      if (bodies[index]!.productId === bodies[winner]!.productId) {
        expect(result.status).toBe(204);
        expect(purchaseIdIn(result.headers.get('location'))).toBe(purchaseId);
      } else {
        expect(result.status).toBe(422);
        expect(result.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
      }
    });
    expect(await client.purchaseReaches(purchaseId, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded' });
    await stack.queueDrained();
    const rows = await stack.payments({ user_id: userId });
    expect(rows.map((row) => [row.id, row.product_id])).toEqual([[purchaseId, bodies[winner]!.productId]]);
  });

  it('treats the same key sent by a different user as a different purchase', async () => {
    const [userId, otherUserId] = (await seedUsers(stack.db, 2)) as [number, number];
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const idempotencyKey = `order-${randomSuffix()}`;

    const [mine, theirs] = await Promise.all([
      client.purchase({ userId, productId }, { idempotencyKey }),
      client.purchase({ userId: otherUserId, productId }, { idempotencyKey }),
    ]);

    expect([mine.status, theirs.status]).toEqual([202, 202]);
    const mineId = purchaseIdIn(mine.headers.get('location'));
    const theirsId = purchaseIdIn(theirs.headers.get('location'));
    expect(mineId).not.toBe(theirsId);
    expect(await client.purchaseReaches(mineId, ['succeeded', 'failed'])).toMatchObject({
      userId,
      status: 'succeeded',
    });
    expect(await client.purchaseReaches(theirsId, ['succeeded', 'failed'])).toMatchObject({
      userId: otherUserId,
      status: 'succeeded',
    });
    const rows = await stack.payments({ product_id: productId });
    expect(rows.map((row) => [row.id, row.user_id]).sort()).toEqual(
      [
        [mineId, userId],
        [theirsId, otherUserId],
      ].sort(),
    );
  });
});
