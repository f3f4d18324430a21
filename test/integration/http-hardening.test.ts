import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLambdaConfig } from '../../src/shared/config.js';
import { recordingLogger } from '../support/logs.js';
import { eventually, seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

interface DocumentedResponse {
  headers?: Record<string, unknown>;
  content?: Record<string, { schema: Record<string, unknown> }>;
}

const ajv = addFormats.default(new Ajv2020({ strict: false, allErrors: true }));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let stack: TestStack;
const logs = recordingLogger();
beforeAll(async () => {
  stack = await createTestStack({ logger: logs.logger, env: { BODY_LIMIT_BYTES: '1024' } });
});
afterAll(() => stack?.close());

/** One answer of each kind: a route's, an error's, one Fastify refuses before routing, a page's. */
const answersOfEveryKind = () =>
  Promise.all([
    stack.app.inject({ method: 'GET', url: '/product' }),
    stack.app.inject({ method: 'GET', url: '/no/such/route' }),
    stack.app.inject({ method: 'GET', url: '/product?limit=abc' }),
    // Rejected by Fastify before routing (frameworkErrors): no hook runs for it.
    stack.app.inject({ method: 'GET', url: '/payment/purchase/%E0%A4%A' }),
    stack.app.inject({ method: 'POST', url: '/user', headers: { 'content-type': 'text/plain' }, payload: 'hello' }),
    stack.app.inject({
      method: 'POST',
      url: '/user',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ username: 'x'.repeat(2048) }),
    }),
    stack.app.inject({ method: 'GET', url: '/openapi.json' }),
    stack.app.inject({ method: 'GET', url: '/docs' }),
  ]);

describe('X-Request-Id', () => {
  const live = (headers: Record<string, string | string[]> = {}) =>
    stack.app.inject({ method: 'GET', url: '/health/live', headers });
  const loggedIds = () => new Set(logs.lines.map((line) => line.reqId));

  it('keeps a well-formed id: echoed in the answer and in every log line of the request', async () => {
    for (const id of ['order-7781', 'a', 'Req_1.2:3-x', 'x'.repeat(128)]) {
      const answer = await live({ 'x-request-id': id });
      expect(answer.statusCode).toBe(200);
      expect(answer.headers['x-request-id']).toBe(id);
      const lines = logs.lines.filter((line) => line.reqId === id);
      expect(lines.map((line) => line.msg)).toEqual(['incoming request', 'request completed']);
    }
  });

  it('replaces a malformed id with a fresh UUID, and never logs the malformed one', async () => {
    const malformed = ['x'.repeat(129), 'has space', 'quote"d', 'semi;colon', 'slash/ed', 'brace{}', 'ünïcode'];
    const given = new Set<string>();
    for (const id of malformed) {
      const answer = await live({ 'x-request-id': id });
      expect(answer.statusCode, id).toBe(200);
      const echoed = answer.headers['x-request-id'] as string;
      expect(echoed, id).toMatch(UUID);
      expect(loggedIds().has(echoed), id).toBe(true);
      given.add(echoed);
    }
    expect(given.size).toBe(malformed.length);
    // Two ids in one request arrive joined ("a, b"): refused as a whole.
    const twice = await live({ 'x-request-id': ['first-id', 'second-id'] });
    expect(twice.headers['x-request-id']).toMatch(UUID);
    const text = logs.text();
    for (const id of [...malformed, 'first-id', 'second-id']) expect(text, id).not.toContain(id);
  });

  it('gives a request without one a fresh UUID', async () => {
    const [first, second] = [await live(), await live()];
    expect(first.headers['x-request-id']).toMatch(UUID);
    expect(second.headers['x-request-id']).toMatch(UUID);
    expect(first.headers['x-request-id']).not.toBe(second.headers['x-request-id']);
  });

  it('is in every answer, errors and pages included', async () => {
    const answers = await answersOfEveryKind();
    expect(answers.map((answer) => answer.statusCode)).toEqual([200, 404, 400, 400, 415, 413, 200, 200]);
    for (const answer of answers) expect(answer.headers['x-request-id'], answer.body).toMatch(UUID);
  });
});

describe('security headers (helmet)', () => {
  it('are on every answer, errors and pages included', async () => {
    for (const answer of await answersOfEveryKind()) {
      const what = `${answer.statusCode} ${answer.body.slice(0, 80)}`;
      expect(answer.headers, what).toMatchObject({
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'SAMEORIGIN',
        'referrer-policy': 'no-referrer',
        'cross-origin-opener-policy': 'same-origin',
        'strict-transport-security': expect.stringMatching(/^max-age=\d+/),
      });
      const csp = String(answer.headers['content-security-policy']);
      expect(csp, what).toContain("default-src 'self'");
      expect(csp, what).toContain("script-src 'self'");
      expect(csp, what).toContain("frame-ancestors 'self'");
      // A browser reaching a plain-HTTP API by a non-loopback name would lose /docs' scripts to an upgrade to HTTPS.
      expect(csp, what).not.toContain('upgrade-insecure-requests');
    }
  });

  it('leave /docs loading: every script and stylesheet it names is served from this origin', async () => {
    const page = await stack.app.inject({ method: 'GET', url: '/docs' });
    const assets = [...page.body.matchAll(/<(?:script|link)[^>]+(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(4);
    for (const asset of assets) {
      expect(asset, 'same origin, so the policy allows it').not.toMatch(/^(https?:)?\/\//);
      const answer = await stack.app.inject({ method: 'GET', url: new URL(asset, 'http://api.test/docs').pathname });
      expect(answer.statusCode, asset).toBe(200);
    }
    // No inline script, which script-src 'self' would block.
    expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
  });
});

/**
 * Makes this process's event loop lag, as an overloaded API's does: every turn of the loop spends
 * `blockMs` busy, until stopped. Requests are still served between turns, slowly.
 */
function lagTheEventLoop(blockMs: number): { stop: () => void } {
  let running = true;
  const turn = () => {
    if (!running) return;
    const until = performance.now() + blockMs;
    while (performance.now() < until) {
      // busy, as a CPU-bound request would be
    }
    setImmediate(turn);
  };
  setImmediate(turn);
  return {
    stop: () => {
      running = false;
    },
  };
}

describe('load shedding (EVENT_LOOP_MAX_DELAY_MS)', () => {
  const ADMIN_TOKEN = 'test-admin-token-0123456789';
  let shedding: TestStack;
  let ids: { userId: number; productId: number };
  let document: { paths: Record<string, Record<string, { responses: Record<string, DocumentedResponse> }>> };
  const logs = recordingLogger();
  beforeAll(async () => {
    // A bound no idle test process reaches, sampled often, so the test takes a second, not ten.
    shedding = await createTestStack({
      logger: logs.logger,
      env: { EVENT_LOOP_MAX_DELAY_MS: '50', EVENT_LOOP_SAMPLE_INTERVAL_MS: '100', ADMIN_TOKEN },
    });
    const { userId, productId } = await seedUserAndProduct(shedding.database.db);
    ids = { userId, productId };
    // A loaded machine can lag past the 50 ms bound already here: ask until it is not shed.
    document = await eventually(async () => {
      const answer = await shedding.app.inject({ method: 'GET', url: '/openapi.json' });
      return answer.statusCode === 200 ? answer.json<typeof document>() : undefined;
    });
  });
  afterAll(() => shedding?.close());

  const get = (url: string, headers: Record<string, string> = {}) =>
    shedding.app.inject({ method: 'GET', url, headers });
  const statusOf = async (url: string) => (await get(url)).statusCode;
  const purchaseOnce = () =>
    shedding.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(ids),
    });
  const shedWarnings = () =>
    logs.lines.filter((line) => line.msg === 'shedding load: the event loop lags past its bound');

  it('answers 503 OVERLOADED with Retry-After while the loop lags, except liveness and metrics, and stops after', async () => {
    await eventually(async () => ((await statusOf('/product')) === 200 ? true : undefined), { what: 'a calm loop' });

    const lag = lagTheEventLoop(150);
    try {
      const shed = await eventually(
        async () => {
          const answer = await get('/product', { 'x-request-id': 'shed-1' });
          return answer.statusCode === 503 ? answer : undefined;
        },
        { timeoutMs: 5_000, intervalMs: 10, what: 'the first shed request' },
      );
      expect(shed.json()).toEqual({
        statusCode: 503,
        code: 'OVERLOADED',
        error: 'Service Unavailable',
        message: expect.stringMatching(/overloaded/),
      });
      expect(shed.headers['retry-after']).toBe('1');
      expect(shed.headers['x-request-id']).toBe('shed-1');
      expect(shed.headers['x-content-type-options']).toBe('nosniff');

      // As the document says for that route and status.
      const documented = document.paths['/product']!.get!.responses['503']!;
      expect(Object.keys(documented.headers ?? {})).toContain('Retry-After');
      const validate = ajv.compile(documented.content!['application/json']!.schema);
      expect(validate(shed.json()), ajv.errorsText(validate.errors)).toBe(true);

      // Still overloaded on both sides of these, so they were served under the lag, not after it.
      expect(await statusOf('/health/live')).toBe(200);
      const metrics = await get('/metrics', { authorization: `Bearer ${ADMIN_TOKEN}` });
      expect(metrics.statusCode).toBe(200);
      const ready = await get('/health/ready');
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'unavailable', checks: { process: 'overloaded', postgres: 'ok' } });
      const purchase = await purchaseOnce();
      expect(purchase.statusCode).toBe(503);
      expect(purchase.json()).toMatchObject({ code: 'OVERLOADED' });
      expect(await statusOf('/product')).toBe(503);

      // Shed together, within one sample interval: one warning at most, not one per request.
      const warningsBefore = shedWarnings().length;
      const burst = await Promise.all(Array.from({ length: 20 }, () => statusOf('/user')));
      expect(burst).toEqual(Array.from({ length: 20 }, () => 503));
      expect(shedWarnings().length - warningsBefore).toBeLessThanOrEqual(1);
    } finally {
      lag.stop();
    }
    // Shed before any work: nothing claimed, recorded or queued (checked once the loop is calm
    // again: a scan of a busy Redis under the lag would take a turn of the loop per page).
    expect(await shedding.claimedKeys()).toEqual([]);
    expect(await shedding.database.db('purchases').count({ count: '*' })).toEqual([{ count: '0' }]);
    expect(await shedding.queue.count()).toBe(0);

    await eventually(async () => ((await statusOf('/product')) === 200 ? true : undefined), {
      timeoutMs: 3_000,
      intervalMs: 10,
      what: 'shedding to stop',
    });
    expect((await get('/health/ready')).json()).toMatchObject({ status: 'ok' });
    const purchase = await purchaseOnce();
    expect(purchase.statusCode).toBe(202);

    const warnings = shedWarnings();
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings[0]).toMatchObject({ maxEventLoopDelayMs: 50, eventLoopDelayMs: expect.any(Number) });
    expect(warnings[0]!.eventLoopDelayMs as number).toBeGreaterThan(50);
  });

  it('is off with EVENT_LOOP_MAX_DELAY_MS=0 and on Lambda', async () => {
    const off = await createTestStack({ env: { EVENT_LOOP_MAX_DELAY_MS: '0', EVENT_LOOP_SAMPLE_INTERVAL_MS: '10' } });
    try {
      expect(off.app.hasDecorator('isUnderPressure')).toBe(false);
    } finally {
      await off.close();
    }
    expect((await loadLambdaConfig({ EVENT_LOOP_MAX_DELAY_MS: '50' })).EVENT_LOOP_MAX_DELAY_MS).toBe(0);
  });
});
