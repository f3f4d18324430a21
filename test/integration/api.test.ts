import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { seedUserAndProduct } from '../support/services.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createTestStack, type TestStack } from '../support/stack.js';

describe.each(STORE_BACKENDS)('the API in-process (%s backend)', (backend) => {
  let stack: TestStack;
  let ids: { userId: number; productId: number; price: number };
  /** Set to make enqueues fail before they reach the queue (fault injection). */
  let enqueueFault: Error | null = null;
  /** Set to make enqueues reach the queue but report failure, as a timed-out command would. */
  let lostReply: Error | null = null;

  beforeAll(async () => {
    stack = await createTestStack({
      backend,
      wrapProducer: (producer): PurchaseProducer => ({
        ...producer,
        enqueuePurchase: async (job) => {
          if (enqueueFault) throw enqueueFault;
          const result = await producer.enqueuePurchase(job);
          if (lostReply) throw lostReply;
          return result;
        },
      }),
    });
    ids = await seedUserAndProduct(stack.database.db, { price: 4200 });
  });
  afterAll(() => stack?.close());
  beforeEach(() => {
    enqueueFault = null;
    lostReply = null;
  });

  const purchase = (body: unknown, headers: Record<string, string> = {}) =>
    stack.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });

  async function jobCount(): Promise<number> {
    const counts = await stack.queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  describe('POST /payment/purchase rejects bad input with a 4xx and leaves nothing behind', () => {
    const valid = () => ({ userId: ids.userId, productId: ids.productId });
    const cases: Array<[string, () => { body: unknown; headers?: Record<string, string> }, number, string]> = [
      ['string id', () => ({ body: { ...valid(), userId: String(ids.userId) } }), 400, 'VALIDATION_FAILED'],
      ['negative id', () => ({ body: { ...valid(), userId: -1 } }), 400, 'VALIDATION_FAILED'],
      ['zero id', () => ({ body: { ...valid(), productId: 0 } }), 400, 'VALIDATION_FAILED'],
      ['fractional id', () => ({ body: { ...valid(), productId: 1.5 } }), 400, 'VALIDATION_FAILED'],
      ['huge id', () => ({ body: { ...valid(), userId: 1e20 } }), 400, 'VALIDATION_FAILED'],
      ['beyond int4', () => ({ body: { ...valid(), userId: 2 ** 31 } }), 400, 'VALIDATION_FAILED'],
      ['null id', () => ({ body: { ...valid(), userId: null } }), 400, 'VALIDATION_FAILED'],
      ['missing id', () => ({ body: { userId: ids.userId } }), 400, 'VALIDATION_FAILED'],
      ['array body', () => ({ body: [ids.userId, ids.productId] }), 400, 'VALIDATION_FAILED'],
      ['null body', () => ({ body: 'null' }), 400, 'VALIDATION_FAILED'],
      ['number body', () => ({ body: '42' }), 400, 'VALIDATION_FAILED'],
      ['unknown field', () => ({ body: { ...valid(), amount: 1 } }), 400, 'VALIDATION_FAILED'],
      [
        'prototype pollution',
        () => ({ body: `{"userId":${ids.userId},"productId":${ids.productId},"__proto__":{"x":1}}` }),
        400,
        'INVALID_JSON',
      ],
      ['malformed JSON', () => ({ body: '{"userId":' }), 400, 'INVALID_JSON'],
      ['empty JSON body', () => ({ body: '' }), 400, 'INVALID_JSON'],
      [
        'text/plain',
        () => ({ body: 'hello', headers: { 'content-type': 'text/plain' } }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      [
        'form encoded',
        () => ({ body: 'userId=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      ['too large', () => ({ body: { ...valid(), pad: 'x'.repeat(64 * 1024) } }), 413, 'PAYLOAD_TOO_LARGE'],
      [
        'over-long key',
        () => ({ body: valid(), headers: { 'idempotency-key': 'k'.repeat(256) } }),
        400,
        'INVALID_IDEMPOTENCY_KEY',
      ],
      [
        'key with a space',
        () => ({ body: valid(), headers: { 'idempotency-key': 'a b' } }),
        400,
        'INVALID_IDEMPOTENCY_KEY',
      ],
      ['empty key', () => ({ body: valid(), headers: { 'idempotency-key': '' } }), 400, 'INVALID_IDEMPOTENCY_KEY'],
      ['unknown user', () => ({ body: { ...valid(), userId: 2_000_000_000 } }), 422, 'USER_NOT_FOUND'],
      ['unknown product', () => ({ body: { ...valid(), productId: 2_000_000_000 } }), 422, 'PRODUCT_NOT_FOUND'],
    ];

    it.each(cases)('%s -> %i %s', async (_name, make, status, code) => {
      const { body, headers } = make();
      const response = await purchase(body, headers);
      expect(response.statusCode).toBe(status);
      expect(response.json()).toEqual({
        statusCode: status,
        code,
        error: expect.any(String),
        message: expect.any(String),
      });
      expect(response.body).not.toMatch(/at .*\.(ts|js):\d+|select |insert /i);
      expect(await stack.claimedKeys()).toEqual([]);
      expect(await jobCount()).toBe(0);
      expect(await stack.database.db('payments').count({ n: '*' })).toEqual([{ n: '0' }]);
    });
  });

  describe('POST /payment/purchase accepts once', () => {
    it('answers 202 with a status URL, then 204 pointing at the original, with one job queued', async () => {
      const { userId } = await seedUserAndProduct(stack.database.db);
      const body = { userId, productId: ids.productId };
      const first = await purchase(body);
      expect(first.statusCode).toBe(202);
      const accepted = first.json();
      expect(accepted).toEqual({
        purchaseId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        status: 'queued',
        statusUrl: `/payment/purchase/${accepted.purchaseId}`,
      });
      expect(first.headers.location).toBe(accepted.statusUrl);

      const again = await purchase(body);
      expect(again.statusCode).toBe(204);
      expect(again.body).toBe('');
      expect(again.headers.location).toBe(accepted.statusUrl);

      const job = await stack.queue.getJob(accepted.purchaseId);
      expect(job?.data).toMatchObject({
        purchaseId: accepted.purchaseId,
        userId,
        productId: ids.productId,
        amount: 4200,
      });

      const status = await stack.app.inject({ method: 'GET', url: accepted.statusUrl });
      expect(status.statusCode).toBe(200);
      expect(status.json()).toMatchObject({
        purchaseId: accepted.purchaseId,
        status: 'queued',
        amount: 4200,
        failureReason: null,
      });
      // Ids are case-insensitive, as uuids are, also while the purchase is only in Redis.
      const upper = await stack.app.inject({
        method: 'GET',
        url: `/payment/purchase/${accepted.purchaseId.toUpperCase()}`,
      });
      expect(upper.statusCode).toBe(200);
      expect(upper.json().purchaseId).toBe(accepted.purchaseId);
    });

    it('releases the claim when the enqueue fails, answers 503 with Retry-After, and accepts the retry', async () => {
      const { userId } = await seedUserAndProduct(stack.database.db);
      const body = { userId, productId: ids.productId };
      const before = await jobCount();
      enqueueFault = new Error('queue down');
      const failed = await purchase(body, { 'idempotency-key': 'retry-me' });
      expect(failed.statusCode).toBe(503);
      expect(failed.headers['retry-after']).toBe('1');
      expect(failed.json()).toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
      expect(failed.body).not.toContain('queue down');
      expect(await stack.claimedKeys()).not.toContainEqual(expect.stringContaining('retry-me'));

      enqueueFault = null;
      const retried = await purchase(body, { 'idempotency-key': 'retry-me' });
      expect(retried.statusCode).toBe(202);
      expect(await jobCount()).toBe(before + 1);
    });

    it('folds the retry of an enqueue whose reply was lost into the job that was queued', async () => {
      const { userId } = await seedUserAndProduct(stack.database.db);
      const body = { userId, productId: ids.productId };
      const before = await jobCount();
      lostReply = new Error('Command timed out');
      const failed = await purchase(body);
      expect(failed.statusCode).toBe(503);
      expect(await jobCount()).toBe(before + 1);

      lostReply = null;
      const retried = await purchase(body);
      // The queue kept the first job, so the retry is a duplicate of it, not a second charge.
      expect(retried.statusCode).toBe(204);
      expect(await jobCount()).toBe(before + 1);
      const [queued] = (await stack.queue.getJobs(['waiting'])).filter((job) => job.data.userId === userId);
      expect(retried.headers.location).toBe(`/payment/purchase/${queued!.id}`);
      // From then on the key points at the queued purchase.
      expect((await purchase(body)).headers.location).toBe(`/payment/purchase/${queued!.id}`);
    });

    it('answers 202 after the wait when nothing finishes in time', async () => {
      const { userId } = await seedUserAndProduct(stack.database.db);
      const response = await purchase({ userId, productId: ids.productId }, { prefer: 'wait=1' });
      expect(response.statusCode).toBe(202);
      expect(response.headers['preference-applied']).toBeUndefined();
    });
  });

  describe('GET /payment/purchase/:purchaseId', () => {
    it('answers 404 for an unknown id and 400 for a malformed one', async () => {
      const missing = await stack.app.inject({ method: 'GET', url: `/payment/purchase/${randomUUID()}` });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().code).toBe('PURCHASE_NOT_FOUND');
      const malformed = await stack.app.inject({ method: 'GET', url: '/payment/purchase/1%20or%201=1' });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().code).toBe('VALIDATION_FAILED');
      // Errors Fastify raises before routing answer in the same shape.
      for (const url of ['/payment/purchase/%zz', `/payment/purchase/${'a'.repeat(300)}`]) {
        const response = await stack.app.inject({ method: 'GET', url });
        expect(response.statusCode).toBe(400);
        expect(response.json()).toEqual({
          statusCode: 400,
          code: 'VALIDATION_FAILED',
          error: 'Bad Request',
          message: expect.any(String),
        });
      }
    });
  });

  describe('users, products and health', () => {
    it('creates a user, refuses a taken username with 409, and lists users', async () => {
      const created = await stack.app.inject({ method: 'POST', url: '/user', payload: { username: 'dora' } });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toEqual({ id: expect.any(Number), username: 'dora', createdAt: expect.any(String) });
      const taken = await stack.app.inject({ method: 'POST', url: '/user', payload: { username: 'dora' } });
      expect(taken.statusCode).toBe(409);
      expect(taken.json().code).toBe('USERNAME_TAKEN');
      const list = await stack.app.inject({ method: 'GET', url: '/user' });
      expect(list.json()).toContainEqual(created.json());
    });

    it('creates and lists products with integer prices', async () => {
      const created = await stack.app.inject({ method: 'POST', url: '/product', payload: { name: 'Tea', price: 250 } });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toMatchObject({ name: 'Tea', price: 250, description: null });
      const negative = await stack.app.inject({ method: 'POST', url: '/product', payload: { name: 'x', price: -5 } });
      expect(negative.statusCode).toBe(400);
      const fractional = await stack.app.inject({
        method: 'POST',
        url: '/product',
        payload: { name: 'x', price: 2.5 },
      });
      expect(fractional.statusCode).toBe(400);
      // Postgres text cannot hold NUL: a 400, not a failed insert.
      for (const payload of [
        { name: 'a\u0000b', price: 1 },
        { name: 'ok', description: '\u0000', price: 1 },
      ]) {
        const nul = await stack.app.inject({ method: 'POST', url: '/product', payload });
        expect(nul.statusCode).toBe(400);
        expect(nul.json().code).toBe('VALIDATION_FAILED');
      }
      const list = await stack.app.inject({ method: 'GET', url: '/product?limit=1000' });
      expect(list.json()).toContainEqual(created.json());
      const badLimit = await stack.app.inject({ method: 'GET', url: '/product?limit=0' });
      expect(badLimit.statusCode).toBe(400);
    });

    it('reports live and ready, and 404s unknown routes with the error shape', async () => {
      expect((await stack.app.inject('/health/live')).json()).toEqual({ status: 'ok' });
      const ready = await stack.app.inject('/health/ready');
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({
        status: 'ok',
        checks: backend === 'redis' ? { postgres: 'ok', redis: 'ok' } : { postgres: 'ok' },
      });
      const unknown = await stack.app.inject('/nope');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json().code).toBe('ROUTE_NOT_FOUND');
    });
  });
});
