import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingLogger } from '../support/logs.js';
import { createTestStack, type TestStack } from '../support/stack.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('X-Request-Id', () => {
  let stack: TestStack;
  const logs = recordingLogger();
  beforeAll(async () => {
    stack = await createTestStack({ logger: logs.logger });
  });
  afterAll(() => stack?.close());

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

  it('is echoed on errors too: unknown route, invalid input, a malformed path, a refused media type', async () => {
    const answers = await Promise.all([
      stack.app.inject({ method: 'GET', url: '/no/such/route', headers: { 'x-request-id': 'err-404' } }),
      stack.app.inject({ method: 'GET', url: '/product?limit=abc', headers: { 'x-request-id': 'err-400' } }),
      // Rejected by Fastify before routing (frameworkErrors): no hook runs for it.
      stack.app.inject({ method: 'GET', url: '/payment/purchase/%E0%A4%A', headers: { 'x-request-id': 'err-frame' } }),
      stack.app.inject({
        method: 'POST',
        url: '/user',
        headers: { 'x-request-id': 'err-415', 'content-type': 'text/plain' },
        payload: 'hello',
      }),
    ]);
    expect(answers.map((answer) => [answer.statusCode, answer.headers['x-request-id']])).toEqual([
      [404, 'err-404'],
      [400, 'err-400'],
      [400, 'err-frame'],
      [415, 'err-415'],
    ]);
  });
});
