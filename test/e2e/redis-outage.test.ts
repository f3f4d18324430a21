import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, seedProducts, seedUsers } from '../support/services.js';
import { startRedisServer, type RunningRedisServer } from '../support/processes.js';
import {
  createPurchaseClient,
  purchaseIdIn,
  type HttpResult,
  type PurchaseClient,
} from '../support/purchase-client.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

describe('Redis outage', () => {
  let redis: RunningRedisServer;
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    // A Redis of this file's own, so stopping it disturbs no other test file.
    redis = await startRedisServer();
    stack = await createProcessStack({ redisUrl: redis.url });
    client = createPurchaseClient((await stack.startApi()).url);
    await stack.startWorker();
  });

  afterAll(async () => {
    await stack?.close();
    await redis?.stop();
  });

  it('answers 503 within a second while Redis is down, and resumes once it is back', async () => {
    const [before, during, after] = (await seedUsers(stack.db, 3)) as [number, number, number];
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const accepted = await client.purchase({ userId: before, productId });
    expect(accepted.status).toBe(202);
    const finishedId = purchaseIdIn(accepted.headers.get('location'));
    expect(await client.purchaseReaches(finishedId, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded' });

    await redis.stop();

    // The first request right after the crash, then a few more while the clients reconnect.
    const attempts: HttpResult[] = [];
    for (let attempt = 0; attempt < 3; attempt++) attempts.push(await client.purchase({ userId: during, productId }));
    for (const result of attempts) {
      expect(result.status).toBe(503);
      expect(result.elapsedMs).toBeLessThan(1_000);
      expect(['SERVICE_UNAVAILABLE', 'QUEUE_UNAVAILABLE']).toContain(result.body?.code);
      expect(result.headers.get('retry-after')).toMatch(/^\d+$/);
    }
    const ready = await client.ready();
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'unavailable', checks: { redis: 'failed', postgres: 'ok' } });
    // Finished purchases live in Postgres and stay readable.
    const finished = await client.getPurchase(finishedId);
    expect(finished.status).toBe(200);
    expect(finished.body).toMatchObject({ status: 'succeeded' });

    redis = await startRedisServer({ port: redis.port });

    // A client retries the request it was refused until the service takes it.
    const retried = await eventually(
      async () => {
        const result = await client.purchase({ userId: during, productId });
        return result.status === 503 ? undefined : result;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'the API to accept purchases again' },
    );
    expect(retried.status).toBe(202);
    const purchaseId = purchaseIdIn(retried.headers.get('location'));
    expect(await client.purchaseReaches(purchaseId, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded' });
    expect((await client.ready()).status).toBe(200);
    expect(await stack.payments({ user_id: during })).toMatchObject([{ id: purchaseId, status: 'succeeded' }]);
    // Unrelated to the outage: a purchase after it is charged too.
    const later = await client.purchase({ userId: after, productId });
    expect(later.status).toBe(202);
    expect(
      await client.purchaseReaches(purchaseIdIn(later.headers.get('location')), ['succeeded', 'failed']),
    ).toMatchObject({
      status: 'succeeded',
    });
  });
});
