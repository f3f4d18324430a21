import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingLogger } from '../support/logs.js';
import { createTestStack, type TestStack } from '../support/stack.js';

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
      // Plain-HTTP deployments (npm start) would lose /docs' scripts to an upgrade to HTTPS.
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
