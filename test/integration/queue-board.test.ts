import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_SESSION_TTL_SECONDS } from '../../src/api/admin-session.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { recordingLogger } from '../support/logs.js';
import { seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

interface BoardQueue {
  name: string;
  readOnlyMode: boolean;
  counts: Record<string, number>;
  jobs: Array<{ id: string; data: Record<string, unknown> }>;
}

describe('the queue dashboard is absent (404)', () => {
  it.each([
    ['without ADMIN_TOKEN', {}],
    // No BullMQ queue on SQS (the request never reaches it: nothing listens at that URL).
    [
      'on QUEUE_DRIVER=sqs',
      { ADMIN_TOKEN, QUEUE_DRIVER: 'sqs', SQS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/payonce-test.fifo' },
    ],
  ])('%s', async (_name, env: Record<string, string>) => {
    const stack = await createTestStack({ env });
    try {
      for (const url of ['/admin/queues', '/admin/queues/api/queues', '/admin/login']) {
        const answer = await stack.app.inject({
          method: 'GET',
          url,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, accept: 'text/html' },
        });
        expect(answer.statusCode, url).toBe(404);
        expect(answer.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
      }
    } finally {
      await stack.close();
    }
  });
});

describe.each(STORE_BACKENDS)('the queue dashboard on the %s backend', (backend) => {
  let stack: TestStack;
  let purchaseId: string;
  const logs = recordingLogger();

  beforeAll(async () => {
    // No worker runs here: the accepted job stays waiting in the queue.
    stack = await createTestStack({ backend, env: { ADMIN_TOKEN }, logger: logs.logger });
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    const accepted = await stack.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ userId, productId }),
    });
    expect(accepted.statusCode, accepted.body).toBe(202);
    purchaseId = accepted.json<{ purchaseId: string }>().purchaseId;
  });
  afterAll(() => stack?.close());

  // As an operator sends them: no account's API key (the stack would add one unless told none).
  const get = (url: string, headers: Record<string, string> = {}) =>
    stack.app.inject({ method: 'GET', url, headers: { authorization: '', ...headers } });
  const queues = async (headers: Record<string, string>) => {
    const answer = await get('/admin/queues/api/queues?activeQueue=' + stack.config.QUEUE_NAME, headers);
    expect(answer.statusCode, answer.body).toBe(200);
    return answer.json<{ queues: BoardQueue[] }>().queues;
  };
  const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const login = (token: string) =>
    stack.app.inject({
      method: 'POST',
      url: '/admin/login',
      headers: { authorization: '', 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token }).toString(),
    });

  it('shows the purchase queue and its waiting job, read-only, to a Bearer ADMIN_TOKEN', async () => {
    const page = await get('/admin/queues', bearer);
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<base href="/admin/queues/"');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    // Every script the page names is served.
    const scripts = [...page.body.matchAll(/<script[^>]+src="([^"]+)"/g)].map((match) => match[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) expect((await get(`/admin/queues/${script}`, bearer)).statusCode, script).toBe(200);

    const [queue, ...others] = await queues(bearer);
    expect(others).toEqual([]);
    expect(queue).toMatchObject({ name: stack.config.QUEUE_NAME, readOnlyMode: true });
    expect(queue!.counts.waiting).toBe(1);
    expect(queue!.jobs.map((job) => [job.id, job.data.purchaseId])).toEqual([[purchaseId, purchaseId]]);
  });

  it('refuses changes: the board is read-only', async () => {
    const name = encodeURIComponent(stack.config.QUEUE_NAME);
    for (const url of [`/admin/queues/api/queues/${name}/pause`, `/admin/queues/api/queues/${name}/empty`]) {
      const answer = await stack.app.inject({ method: 'PUT', url, headers: bearer });
      expect(answer.statusCode, `${url}: ${answer.body}`).toBeGreaterThanOrEqual(400);
    }
    expect((await queues(bearer))[0]!.counts.waiting).toBe(1);
    expect(await stack.queue.isPaused()).toBe(false);
  });

  it('answers a script without a valid Bearer token 401 UNAUTHENTICATED, and sends a browser to the login form', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Bearer ${ADMIN_TOKEN}x` },
      { authorization: `Basic ${ADMIN_TOKEN}` },
    ]) {
      for (const url of ['/admin/queues', '/admin/queues/api/queues']) {
        const answer = await get(url, headers);
        expect(answer.statusCode, url).toBe(401);
        expect(answer.json()).toMatchObject({ statusCode: 401, code: 'UNAUTHENTICATED', error: 'Unauthorized' });
        expect(answer.headers['www-authenticate']).toMatch(/^Bearer/);
      }
    }
    const navigation = await get('/admin/queues', { accept: 'text/html,application/xhtml+xml' });
    expect(navigation.statusCode).toBe(303);
    expect(navigation.headers.location).toBe('/admin/login');
    const form = await get('/admin/login', { accept: 'text/html' });
    expect(form.statusCode).toBe(200);
    expect(form.body).toMatch(/<form method="post" action="\/admin\/login">/);
    expect(form.body).toMatch(/<input type="password" name="token"/);
  });

  it('trades the token, posted to /admin/login, for a session cookie: HttpOnly, Secure, SameSite=Strict, /admin only', async () => {
    const refused = await login(`${ADMIN_TOKEN}x`);
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(refused.body).toContain('not the admin token');

    const answer = await login(ADMIN_TOKEN);
    expect(answer.statusCode).toBe(303);
    expect(answer.headers.location).toBe('/admin/queues');
    const setCookie = String(answer.headers['set-cookie']);
    const attributes = setCookie.split('; ').slice(1);
    expect(attributes.sort()).toEqual(
      ['HttpOnly', `Max-Age=${ADMIN_SESSION_TTL_SECONDS}`, 'Path=/admin', 'SameSite=Strict', 'Secure'].sort(),
    );
    const session = setCookie.split(';')[0]!;
    expect(session).toMatch(/^payonce_admin=\d+\.[A-Za-z0-9_-]{43}$/);
    expect(session).not.toContain(ADMIN_TOKEN);

    const [queue] = await queues({ cookie: `other=1; ${session}` });
    expect(queue!.counts.waiting).toBe(1);
    expect((await get('/admin/queues', { cookie: session, accept: 'text/html' })).statusCode).toBe(200);
    // A session opens the dashboard only, not the other operator routes.
    expect((await get('/metrics', { cookie: session })).statusCode).toBe(401);

    // Forged or altered sessions are refused.
    const [expiry, mac] = session.slice('payonce_admin='.length).split('.') as [string, string];
    const later = String(Number(expiry) + 3600);
    const flipped = `${mac.slice(0, -2)}${mac.at(-2) === 'A' ? 'B' : 'A'}${mac.at(-1)}`;
    for (const forged of [
      `payonce_admin=${later}.${mac}`,
      `payonce_admin=${expiry}.${flipped}`,
      'payonce_admin=',
      `${ADMIN_TOKEN}`,
    ]) {
      expect((await get('/admin/queues/api/queues', { cookie: forged })).statusCode, forged).toBe(401);
    }

    const logout = await get('/admin/logout', { cookie: session });
    expect(logout.statusCode).toBe(303);
    expect(logout.headers.location).toBe('/admin/login');
    expect(String(logout.headers['set-cookie'])).toMatch(/^payonce_admin=; Path=\/admin; Max-Age=0;/);

    // Neither the token nor the session reached the logs.
    const text = logs.text();
    expect(text).toContain('/admin/login');
    expect(text).not.toContain(ADMIN_TOKEN);
    expect(text).not.toContain(session.split('=')[1]!);
  });

  it('stays out of the client API document', async () => {
    const document = (await get('/openapi.json')).json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(document.paths)).toContain('/payment/purchase');
    expect(Object.keys(document.paths).filter((path) => path.startsWith('/admin'))).toEqual([]);
  });
});
