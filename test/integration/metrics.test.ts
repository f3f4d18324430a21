import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purchaseOutcome } from '../../src/api/metrics.js';
import { promtool, sample } from '../support/prometheus.js';
import { seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

describe('GET /metrics without ADMIN_TOKEN', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await createTestStack();
  });
  afterAll(() => stack?.close());

  it('is not registered: 404 ROUTE_NOT_FOUND, with or without a token', async () => {
    for (const headers of [{}, { authorization: `Bearer ${ADMIN_TOKEN}` }]) {
      const response = await stack.app.inject({ method: 'GET', url: '/metrics', headers });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    }
  });
});

describe('GET /metrics with ADMIN_TOKEN', () => {
  let stack: TestStack;
  let ids: { userId: number; productId: number };
  const scrape = async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.statusCode).toBe(200);
    return response;
  };
  const purchase = (body: unknown, idempotencyKey: string) =>
    stack.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      payload: JSON.stringify(body),
    });

  beforeAll(async () => {
    // No worker runs here: accepted jobs stay waiting in the queue.
    stack = await createTestStack({ env: { ADMIN_TOKEN } });
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    ids = { userId, productId };
  });
  afterAll(() => stack?.close());

  it('refuses a missing, malformed or wrong token with 401 UNAUTHENTICATED', async () => {
    for (const authorization of [undefined, ADMIN_TOKEN, `Bearer ${ADMIN_TOKEN}x`, 'Bearer ', `Basic ${ADMIN_TOKEN}`]) {
      const response = await stack.app.inject({
        method: 'GET',
        url: '/metrics',
        headers: authorization === undefined ? {} : { authorization },
      });
      expect(response.statusCode, String(authorization)).toBe(401);
      expect(response.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
    }
  });

  it('counts purchases by outcome, times routes, and reports the queue', async () => {
    const other = await seedUserAndProduct(stack.database.db);
    const keyA = randomUUID();
    const first = await purchase(ids, keyA);
    expect(first.statusCode, first.body).toBe(202);
    // A second accepted job, younger by at least the pause: the age gauge must follow the oldest.
    await sleep(600);
    expect((await purchase({ userId: other.userId, productId: other.productId }, randomUUID())).statusCode).toBe(202);
    expect((await purchase(ids, keyA)).statusCode).toBe(204);
    expect((await purchase({ ...ids, productId: other.productId }, keyA)).statusCode).toBe(422);
    expect((await purchase({ ...ids, userId: 2_000_000_000 }, randomUUID())).statusCode).toBe(422);
    expect((await purchase({ userId: 'x' }, randomUUID())).statusCode).toBe(400);
    expect((await stack.app.inject({ method: 'GET', url: '/no/such/route' })).statusCode).toBe(404);

    const response = await scrape();
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = response.body;
    expect(sample(text, 'payonce_purchases_total{outcome="accepted"}')).toBe(2);
    expect(sample(text, 'payonce_purchases_total{outcome="duplicate"}')).toBe(1);
    expect(sample(text, 'payonce_purchases_total{outcome="key_reused"}')).toBe(1);
    expect(sample(text, 'payonce_purchases_total{outcome="rejected"}')).toBe(2);
    expect(sample(text, 'payonce_purchases_total{outcome="unavailable"}')).toBe(0);
    expect(
      sample(
        text,
        'payonce_http_request_duration_seconds_count{method="POST",route="/payment/purchase",status_code="202"}',
      ),
    ).toBe(2);
    // Every unknown path shares one series.
    expect(
      sample(text, 'payonce_http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"}'),
    ).toBe(1);
    // Both accepted jobs wait: no worker runs in this test.
    expect(sample(text, 'payonce_queue_jobs{state="waiting"}')).toBe(2);
    expect(sample(text, 'payonce_queue_jobs{state="active"}')).toBe(0);
    expect(sample(text, 'payonce_queue_oldest_waiting_age_seconds')).toBeGreaterThanOrEqual(0.6);
    expect(sample(text, 'payonce_prefer_wait_requests')).toBe(0);
    expect(sample(text, 'payonce_status_streams')).toBe(0);
    // The two acceptances claimed their keys; the duplicate and the reused key found them held.
    expect(sample(text, 'payonce_claim_duration_seconds_count{result="claimed"}')).toBe(2);
    expect(sample(text, 'payonce_claim_duration_seconds_count{result="held"}')).toBe(2);
    expect(sample(text, 'payonce_claim_duration_seconds_count{result="error"}')).toBe(0);
    expect(sample(text, 'payonce_enqueue_duration_seconds_count{result="queued"}')).toBe(2);
    expect(sample(text, 'payonce_enqueue_duration_seconds_count{result="error"}')).toBe(0);
    expect(sample(text, 'payonce_enqueue_duration_seconds_sum{result="queued"}')).toBeGreaterThan(0);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
  });

  it('reports the events streams open now', async () => {
    const queued = {
      purchaseId: randomUUID(),
      ...ids,
      status: 'queued' as const,
      amount: 1,
      failureReason: null,
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    const sink = { send: () => {}, keepAlive: () => {}, end: () => {} };
    const stream = stack.root.statusStreams.open(queued, async () => queued, sink)!;
    expect(sample((await scrape()).body, 'payonce_status_streams')).toBe(1);
    stream.stop();
    expect(sample((await scrape()).body, 'payonce_status_streams')).toBe(0);
  });

  it('stays out of the client API document', async () => {
    const document = (await stack.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, unknown>;
    }>();
    expect(Object.keys(document.paths)).toContain('/payment/purchase');
    expect(Object.keys(document.paths)).not.toContain('/metrics');
  });

  it("passes Prometheus' own check (promtool check metrics)", async () => {
    const checked = promtool(['check', 'metrics'], (await scrape()).body);
    expect(checked.status, checked.output).toBe(0);
    // Lint problems (names, units, help) come with exit 0 in some versions.
    expect(checked.output).toBe('');
  });
});

describe('purchaseOutcome', () => {
  it.each([
    [202, undefined, 'accepted'],
    [200, undefined, 'accepted'],
    [204, undefined, 'duplicate'],
    [422, 'IDEMPOTENCY_KEY_REUSED', 'key_reused'],
    [422, 'USER_NOT_FOUND', 'rejected'],
    [400, 'VALIDATION_FAILED', 'rejected'],
    [429, 'RATE_LIMITED', 'rate_limited'],
    [503, 'QUEUE_UNAVAILABLE', 'unavailable'],
    [500, 'INTERNAL_ERROR', 'unavailable'],
  ])('%i %s is %s', (status, code, outcome) => {
    expect(purchaseOutcome(status, code)).toBe(outcome);
  });
});
