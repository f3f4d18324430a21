import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeys, seedUserAndProduct } from '../support/services.js';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createTestStack, type TestStack } from '../support/stack.js';

/**
 * Issue 9, items 2, 3 and 6: every 202 is recorded in Postgres before it is sent, and every 204
 * points at a purchase whose status URL answers. No worker runs here, so every purchase stays
 * accepted and unfinished.
 */
describe.each(STORE_BACKENDS)('durable acceptance (%s backend)', (backend) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createTestStack({ backend });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const purchase = (body: { userId: number; productId: number }, key: string) =>
    stack.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      payload: JSON.stringify(body),
    });
  const status = (location: string) => stack.app.inject({ method: 'GET', url: location });

  it('records an accepted purchase in Postgres before answering 202', async () => {
    const { userId, productId } = await seedUserAndProduct(stack.database.db, { price: 450 });
    const accepted = await purchase({ userId, productId }, 'durable-1');
    expect(accepted.statusCode).toBe(202);
    const { purchaseId } = accepted.json<{ purchaseId: string }>();
    expect(await stack.database.db('purchases').where({ id: purchaseId })).toEqual([
      expect.objectContaining({
        user_id: userId,
        product_id: productId,
        amount: 450,
        idempotency_key: `user:${userId}:key:durable-1`,
      }),
    ]);
  });

  it.runIf(backend === 'redis')("answers a 202 purchase's status URL with 200 after Redis lost every key", async () => {
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    const accepted = await purchase({ userId, productId }, 'durable-2');
    expect(accepted.statusCode).toBe(202);
    const location = accepted.headers.location as string;
    // Everything payonce keeps in Redis under this stack's prefix: claims, records, the queue.
    await deleteKeys(stack.config.REDIS_KEY_PREFIX, stack.config.REDIS_URL);
    const after = await status(location);
    expect(after.statusCode).toBe(200);
    expect(after.json()).toMatchObject({ purchaseId: accepted.json().purchaseId, status: 'queued' });
  });

  it('gives 50 identical concurrent submissions one 202 and 49 204s whose Location answers 200', async () => {
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    const answers = await Promise.all(Array.from({ length: 50 }, () => purchase({ userId, productId }, 'storm')));
    const codes = answers.map((answer) => answer.statusCode).sort();
    expect(codes).toEqual([202, ...Array<number>(49).fill(204)]);
    const locations = new Set(answers.map((answer) => answer.headers.location));
    expect(locations.size).toBe(1);
    const [location] = [...locations] as [string];
    expect((await status(location)).statusCode).toBe(200);
    if (backend === 'redis') {
      // Afterwards too, with Redis's records gone.
      await deleteKeys(stack.config.REDIS_KEY_PREFIX, stack.config.REDIS_URL);
      expect((await status(location)).statusCode).toBe(200);
    }
  });
});

describe.each(STORE_BACKENDS)(
  'an enqueue that ran but whose reply was lost (issue 9, item 3; %s backend)',
  (backend) => {
    let stack: TestStack;
    /** While true, the next enqueue reaches the queue and then fails, as a lost reply would. */
    let loseReply = false;

    beforeAll(async () => {
      stack = await createTestStack({
        backend,
        wrapProducer: (producer): PurchaseProducer => ({
          ...producer,
          async enqueuePurchase(job) {
            const result = await producer.enqueuePurchase(job);
            if (!loseReply) return result;
            loseReply = false;
            throw new Error('socket hang up');
          },
        }),
      });
    });
    afterAll(async () => {
      await stack?.close();
    });

    it("answers the client's retry with 204 for the queued purchase, whose status URL answers 200", async () => {
      const { userId, productId } = await seedUserAndProduct(stack.database.db);
      const purchase = () =>
        stack.app.inject({
          method: 'POST',
          url: '/payment/purchase',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'lost-reply' },
          payload: JSON.stringify({ userId, productId }),
        });
      loseReply = true;
      const failed = await purchase();
      expect(failed.statusCode).toBe(503);
      expect(failed.json()).toMatchObject({ code: 'QUEUE_UNAVAILABLE' });

      const retried = await purchase();
      expect(retried.statusCode).toBe(204);
      const location = retried.headers.location as string;
      const queuedId = location.split('/').pop()!;
      // The retry points at the job the queue really holds, not at a purchase of its own.
      expect(await stack.queue.getJob(queuedId)).toBeDefined();
      const status = await stack.app.inject({ method: 'GET', url: location });
      expect(status.statusCode).toBe(200);
      expect(status.json()).toMatchObject({ purchaseId: queuedId, status: 'queued' });
      // Kept, not abandoned: the account's listing shows it.
      const listing = await stack.app.inject({ method: 'GET', url: `/payment/purchase?userId=${userId}` });
      expect(listing.json().data.map((row: { purchaseId: string }) => row.purchaseId)).toContain(queuedId);
    });
  },
);
