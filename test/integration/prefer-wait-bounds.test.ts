import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { authorization, useApiKey } from '../support/purchase-client.js';
import { eventually, seedUserAndProduct } from '../support/services.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createTestStack, type TestStack } from '../support/stack.js';

/**
 * `Prefer: wait` against the API as the server composes it, listening on 127.0.0.1 and driven by
 * real HTTP clients (no worker runs, so every wait lasts until its deadline or its client goes).
 */

/** A POST /payment/purchase as a client sends it; resolves with the answer and how long it took. */
async function post(
  baseUrl: string,
  body: { userId: number; productId: number },
  options: { prefer?: string; idempotencyKey?: string; signal?: AbortSignal } = {},
) {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/payment/purchase`, {
    method: 'POST',
    headers: {
      ...authorization(baseUrl),
      'content-type': 'application/json',
      'idempotency-key': options.idempotencyKey ?? randomUUID(),
      ...(options.prefer ? { prefer: options.prefer } : {}),
    },
    body: JSON.stringify(body),
    signal: options.signal ?? AbortSignal.timeout(40_000),
  });
  await response.arrayBuffer();
  return { status: response.status, headers: response.headers, elapsedMs: performance.now() - started };
}

async function listen(stack: TestStack): Promise<string> {
  await stack.app.listen({ host: '127.0.0.1', port: 0 });
  const baseUrl = `http://127.0.0.1:${(stack.app.server.address() as AddressInfo).port}`;
  useApiKey(baseUrl, stack.apiKey);
  return baseUrl;
}

describe.each(STORE_BACKENDS)('Prefer: wait bounds (WAIT_MAX_WAITERS=2, %s backend)', (backend) => {
  let stack: TestStack;
  let baseUrl: string;
  let enqueueDelayMs = 0;
  let references: { userId: number; productId: number };

  beforeAll(async () => {
    stack = await createTestStack({
      backend,
      env: { WAIT_MAX_WAITERS: '2' },
      // A slow queue, when a test asks for one.
      wrapProducer: (producer): PurchaseProducer => ({
        ...producer,
        enqueuePurchase: async (job) => {
          if (enqueueDelayMs > 0) await sleep(enqueueDelayMs);
          return producer.enqueuePurchase(job);
        },
      }),
    });
    baseUrl = await listen(stack);
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    references = { userId, productId };
  });

  afterAll(async () => {
    await stack?.close();
  });

  const waiter = () => stack.root.waiter;

  it('holds at most WAIT_MAX_WAITERS waits; the next purchase is accepted with an immediate 202', async () => {
    const clients = [1, 2, 3].map(() => new AbortController());
    const answers = clients.map((client) =>
      post(baseUrl, references, { prefer: 'wait=20', signal: client.signal }).catch((error: unknown) => error),
    );
    try {
      // One of the three finds every place taken and is answered at once, without waiting.
      const first = await Promise.race(answers);
      expect(first).toMatchObject({ status: 202 });
      const { headers, elapsedMs } = first as Awaited<ReturnType<typeof post>>;
      expect(headers.get('preference-applied')).toBeNull();
      expect(elapsedMs).toBeLessThan(3_000);
      expect(waiter().waiting()).toBe(2);
    } finally {
      for (const client of clients) client.abort();
      await Promise.all(answers);
    }
    await eventually(() => (waiter().waiting() === 0 ? true : undefined), {
      timeoutMs: 2_000,
      what: 'the waits to end',
    });
  });

  it('stops a wait when its client disconnects, freeing its place; the purchase stays accepted', async () => {
    const client = new AbortController();
    const idempotencyKey = randomUUID();
    const answer = post(baseUrl, references, { prefer: 'wait=20', idempotencyKey, signal: client.signal }).catch(
      (error: unknown) => error,
    );
    await eventually(() => (waiter().waiting() === 1 ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the request to wait',
    });

    const abortedAt = performance.now();
    client.abort();
    await eventually(() => (waiter().waiting() === 0 ? true : undefined), {
      timeoutMs: 2_000,
      intervalMs: 10,
      what: 'the wait to end with its client',
    });
    expect(performance.now() - abortedAt).toBeLessThan(1_000);
    expect(await answer).toMatchObject({ name: 'AbortError' });

    // Accepted all the same: the same key and body are now a duplicate of it.
    const retry = await post(baseUrl, references, { idempotencyKey });
    expect(retry.status).toBe(204);
  });

  it("counts the wait from the request's arrival, a slow upload and a slow enqueue included", async () => {
    enqueueDelayMs = 500;
    try {
      const port = new URL(baseUrl).port;
      const body = JSON.stringify(references);
      const answer = await new Promise<{ status: number; elapsedMs: number }>((resolve, reject) => {
        const request = httpRequest({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/payment/purchase',
          headers: {
            ...authorization(baseUrl),
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'idempotency-key': randomUUID(),
            prefer: 'wait=2',
          },
          timeout: 10_000,
        });
        const started = performance.now();
        request.on('response', (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode!, elapsedMs: performance.now() - started }));
        });
        request.on('timeout', () => request.destroy(new Error('no answer within 10 s')));
        request.on('error', reject);
        // The headers now, the body a second later.
        request.flushHeaders();
        setTimeout(() => request.end(body), 1_000);
      });

      expect(answer.status).toBe(202);
      // 2 s after the headers arrived, not 2 s after the upload (3 s) or the enqueue (3.5 s).
      expect(answer.elapsedMs).toBeGreaterThanOrEqual(1_900);
      expect(answer.elapsedMs).toBeLessThan(2_600);
    } finally {
      enqueueDelayMs = 0;
    }
  });
});

describe.each(STORE_BACKENDS)('the Prefer: wait fallback poll (%s backend)', (backend) => {
  const POLL_MS = 500;
  let stack: TestStack;
  let baseUrl: string;

  beforeAll(async () => {
    // A pool as small as it gets: the poll must leave it to requests and the readiness check.
    stack = await createTestStack({
      backend,
      env: { WAIT_POLL_INTERVAL_MS: String(POLL_MS), DATABASE_POOL_MAX: '2' },
    });
    baseUrl = await listen(stack);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('reads the payments of every waiting purchase in one statement per interval, and leaves the pool free', async () => {
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    const references = { userId, productId };
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => {
      // The status reads of `payments` (knex quotes the table), not other statements that mention it.
      if (/from "payments"/.test(query.sql)) statements.push(query.sql);
    };
    stack.root.clients.db.on('query', onQuery);
    try {
      const waits = Array.from({ length: 40 }, () => post(baseUrl, references, { prefer: 'wait=3' }));
      await eventually(() => (stack.root.waiter.waiting() === 40 ? true : undefined), {
        timeoutMs: 5_000,
        what: 'every request to wait',
      });
      const ready = await fetch(`${baseUrl}/health/ready`, { signal: AbortSignal.timeout(5_000) });
      expect(ready.status).toBe(200);

      const answers = await Promise.all(waits);
      expect(answers.map(({ status }) => status)).toEqual(answers.map(() => 202));
      // At most 3 s of waiting: 6 polls, one statement each for all 40 (no more than 7 with the
      // registrations' spread), where reading per request would cost 40 a round.
      expect(statements.length).toBeGreaterThan(0);
      expect(statements.length).toBeLessThanOrEqual(7);
    } finally {
      stack.root.clients.db.off('query', onQuery);
    }
  });
});
