import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedProducts, seedUserAndProduct, seedUsers } from '../support/services.js';
import { createPurchaseClient, purchaseIdIn, statusCounts, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis-cluster.js';

/** Each store backend, and the Redis backend on a Redis Cluster. */
const SETUPS = [
  ...STORE_BACKENDS.map((backend) => ({ backend, on: `the ${backend} backend`, cluster: false })),
  { backend: 'redis' as const, on: 'a Redis Cluster of three masters (REDIS_CLUSTER=true)', cluster: true },
];

describe.each(SETUPS)('concurrent purchases on $on', ({ backend, cluster }) => {
  let redisCluster: RunningRedisCluster | undefined;
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    if (cluster) redisCluster = await startRedisCluster();
    stack = await createProcessStack({ backend, redisCluster });
    // The status poll behind Prefer: wait first runs in 10 minutes: only announcements answer waits.
    const api = await stack.startApi({ WAIT_POLL_INTERVAL_MS: '600000' });
    await stack.startWorker();
    client = createPurchaseClient(api.url);
  });

  afterAll(async () => {
    await stack?.close();
    await redisCluster?.stop();
  });

  it('accepts one of 50 identical concurrent purchases and answers the other 49 with 204 pointing at it', async () => {
    const { userId, productId, price } = await seedUserAndProduct(stack.db);
    const jobsBefore = await stack.jobCounts();

    const results = await Promise.all(Array.from({ length: 50 }, () => client.purchase({ userId, productId })));

    expect(statusCounts(results)).toEqual({ 202: 1, 204: 49 });
    const accepted = results.find((result) => result.status === 202)!;
    const purchaseId = purchaseIdIn(accepted.headers.get('location'));
    expect(accepted.body).toEqual({ purchaseId, status: 'queued', statusUrl: `/payment/purchase/${purchaseId}` });
    for (const duplicate of results.filter((result) => result.status === 204)) {
      expect(duplicate.body).toBeNull();
      expect(purchaseIdIn(duplicate.headers.get('location'))).toBe(purchaseId);
    }

    const finished = await client.purchaseReaches(purchaseId, ['succeeded', 'failed']);
    expect(finished).toMatchObject({
      purchaseId,
      userId,
      productId,
      status: 'succeeded',
      amount: price,
      failureReason: null,
    });
    const jobsAfter = await stack.queueDrained();
    expect(jobsAfter.completed - jobsBefore.completed).toBe(1);
    expect(jobsAfter.failed).toBe(jobsBefore.failed);
    const rows = await stack.payments({ user_id: userId, product_id: productId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: purchaseId, status: 'succeeded', amount: price, failure_reason: null });
    // Charged once, at the gateway's own ledger.
    expect(await stack.db('gateway_charges').where({ purchase_id: purchaseId }).pluck('amount')).toEqual([price]);
    // The key still blocks duplicates, found where the layout puts it (on a cluster, by a SCAN of every master).
    expect(await stack.claims()).toContain(`user:${userId}:product:${productId}`);
  });

  it('accepts 200 concurrent distinct purchases and records 200 succeeded payments', async () => {
    const userIds = await seedUsers(stack.db, 100);
    const productIds = await seedProducts(stack.db, 2, 2500);
    const requests = userIds.flatMap((userId) => productIds.map((productId) => ({ userId, productId })));
    expect(requests).toHaveLength(200);

    const results = await Promise.all(requests.map((body) => client.purchase(body)));

    expect(statusCounts(results)).toEqual({ 202: 200 });
    const expected = new Map<string, { userId: number; productId: number }>();
    results.forEach((result, index) => expected.set(purchaseIdIn(result.headers.get('location')), requests[index]!));
    expect(expected.size).toBe(200);

    const rows = await stack.queueDrained(20_000).then(() => stack.payments());
    const ours = rows.filter((row) => userIds.includes(row.user_id));
    expect(ours).toHaveLength(200);
    for (const row of ours) {
      expect(row.status).toBe('succeeded');
      expect(row.amount).toBe(2500);
      expect(expected.get(row.id)).toEqual({ userId: row.user_id, productId: row.product_id });
    }
    const charged = await stack
      .db('gateway_charges')
      .whereIn('purchase_id', [...expected.keys()])
      .pluck('purchase_id');
    expect(charged.sort()).toEqual([...expected.keys()].sort());
  });

  it("answers Prefer: wait with the outcome, woken by the worker's announcement", async () => {
    const { userId, productId } = await seedUserAndProduct(stack.db);
    const answer = await client.purchase({ userId, productId }, { prefer: 'wait=15' });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ userId, productId, status: 'succeeded' });
  });
});
