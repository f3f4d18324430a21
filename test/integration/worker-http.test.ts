import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeWorkerProcess, type WorkerProcessRoot } from '../../src/worker/process-root.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createServer } from 'node:net';
import { freePort, startWorker } from '../support/processes.js';
import { promtool, sample, scrapeMetrics } from '../support/prometheus.js';
import { eventually, seedUserAndProduct, testConfig } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const logger = pino({ level: 'silent' });

const get = async (url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers });
  return { status: response.status, headers: response.headers, body: (await response.json()) as unknown };
};

/**
 * The worker's own HTTP endpoint (src/worker/http.ts) as the worker process serves it, with the
 * real BullMQ transport, Postgres and store backend; the API in-process feeds it purchases.
 */
describe.each(STORE_BACKENDS)('the worker HTTP endpoint (%s backend)', (backend) => {
  let stack: TestStack;
  let root: WorkerProcessRoot;
  let port: number;
  let url: string;
  const roots: WorkerProcessRoot[] = [];

  beforeAll(async () => {
    stack = await createTestStack({ backend });
    port = await freePort();
    root = composeWorkerProcess(
      testConfig({
        ...stack.workerEnv({ PAYMENT_DELAY_MS: '1000' }),
        LOG_LEVEL: 'silent',
        ADMIN_TOKEN,
        WORKER_HTTP_PORT: String(port),
        RECONCILE_INTERVAL_MS: '0',
      }),
      { logger },
    );
    roots.push(root);
    url = await root.startHttp();
    await root.startTransport();
  });
  afterAll(async () => {
    for (const started of roots) await started.close();
    await stack?.close();
  });

  it('listens on HOST:WORKER_HTTP_PORT and is live', async () => {
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(await get(`${url}/health/live`)).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('is ready when Postgres and the store backend answer', async () => {
    const checks = backend === 'redis' ? { postgres: 'ok', redis: 'ok' } : { postgres: 'ok' };
    expect(await get(`${url}/health/ready`)).toMatchObject({ status: 200, body: { status: 'ok', checks } });
  });

  it('guards /metrics with ADMIN_TOKEN as the API does, and answers unknown routes in the house shape', async () => {
    const wrong: Array<Record<string, string>> = [
      {},
      { authorization: `Bearer ${ADMIN_TOKEN}x` },
      { authorization: ADMIN_TOKEN },
    ];
    for (const headers of wrong) {
      const refused = await get(`${url}/metrics`, headers);
      expect(refused).toMatchObject({ status: 401, body: { statusCode: 401, code: 'UNAUTHENTICATED' } });
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect(await get(`${url}/no/such/route`)).toMatchObject({
      status: 404,
      body: { statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found' },
    });
  });

  it('counts the purchases it ran and the reconciler runs, in a scrape promtool accepts', async () => {
    const submit = async () => {
      const { userId, productId } = await seedUserAndProduct(stack.database.db);
      return stack.app.inject({
        method: 'POST',
        url: '/payment/purchase',
        headers: { prefer: 'wait=10' },
        payload: { userId, productId },
      });
    };
    const answers = await Promise.all([submit(), submit()]);
    for (const answer of answers) expect(answer.json()).toMatchObject({ status: 'succeeded' });
    await root.reconcile();

    const response = await scrapeMetrics(url, ADMIN_TOKEN);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    // The step announces its outcome (and the API answers) a moment before its run is timed.
    const text = await eventually(
      async () => {
        const now = await (await scrapeMetrics(url, ADMIN_TOKEN)).text();
        return sample(now, 'payonce_worker_job_duration_seconds_count{outcome="succeeded"}') === 2 ? now : undefined;
      },
      { timeoutMs: 5_000, what: 'both runs to be timed' },
    );
    expect(sample(text, 'payonce_worker_purchases_total{outcome="succeeded"}')).toBe(2);
    expect(sample(text, 'payonce_worker_purchases_total{outcome="failed",reason="card_declined"}')).toBe(0);
    expect(sample(text, 'payonce_worker_failed_attempts_total{result="retry"}')).toBe(0);
    expect(sample(text, 'payonce_worker_reconcile_runs_total{result="completed"}')).toBe(1);
    expect(text).toMatch(/^process_cpu_seconds_total /m);

    const checked = promtool(['check', 'metrics'], text);
    expect(checked.status, checked.output).toBe(0);
    expect(checked.output).toBe('');
  });

  it('answers 503 naming the dependency that does not answer; no /metrics without ADMIN_TOKEN', async () => {
    // Nothing listens on these ports: Postgres and Redis both refuse.
    const [deadPostgres, deadRedis] = [await freePort(), await freePort()];
    const broken = composeWorkerProcess(
      testConfig({
        ...stack.workerEnv(),
        LOG_LEVEL: 'silent',
        DATABASE_URL: `postgres://postgres@127.0.0.1:${deadPostgres}/nowhere`,
        ...(backend === 'redis' ? { REDIS_URL: `redis://127.0.0.1:${deadRedis}` } : {}),
        WORKER_HTTP_PORT: '0',
      }),
      { logger },
    );
    roots.push(broken);
    const brokenUrl = await broken.startHttp();
    expect(brokenUrl).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);

    const checks = backend === 'redis' ? { postgres: 'failed', redis: 'failed' } : { postgres: 'failed' };
    expect(await get(`${brokenUrl}/health/ready`)).toMatchObject({
      status: 503,
      body: { status: 'unavailable', checks },
    });
    expect(await get(`${brokenUrl}/health/live`)).toMatchObject({ status: 200 });
    expect(await get(`${brokenUrl}/metrics`, { authorization: `Bearer ${ADMIN_TOKEN}` })).toMatchObject({
      status: 404,
      body: { code: 'ROUTE_NOT_FOUND' },
    });
  });

  it.runIf(backend === 'redis')('exits 1, naming the port, when WORKER_HTTP_PORT is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const busyPort = (taken.address() as { port: number }).port;
      const failed = await startWorker({ ...stack.workerEnv(), WORKER_HTTP_PORT: String(busyPort) }).catch(
        (error: unknown) => error as Error,
      );
      expect(failed).toBeInstanceOf(Error);
      expect((failed as Error).message).toMatch(/worker exited early/);
      expect((failed as Error).message).toMatch(/could not serve WORKER_HTTP_PORT/);
      expect((failed as Error).message).not.toMatch(/worker started/);
    } finally {
      taken.close();
    }
  });

  it('answers readiness 503 from the start of a shutdown while the jobs in flight drain, then closes', async () => {
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    const accepted = await stack.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      payload: { userId, productId },
    });
    const { purchaseId } = accepted.json<{ purchaseId: string }>();
    await eventually(
      async () => {
        const view = await stack.app.inject({ method: 'GET', url: `/payment/purchase/${purchaseId}` });
        return view.json<{ status: string }>().status === 'processing' ? true : undefined;
      },
      { timeoutMs: 5_000, what: 'the purchase to be in flight' },
    );

    const closing = root.close();
    expect(await get(`${url}/health/ready`)).toMatchObject({
      status: 503,
      body: { status: 'unavailable', checks: { process: 'shutting_down', postgres: 'ok' } },
    });
    expect(await get(`${url}/health/live`)).toMatchObject({ status: 200 });
    await closing;

    expect(await stack.database.db('payments').where({ id: purchaseId })).toHaveLength(1);
    await expect(fetch(`${url}/health/live`)).rejects.toThrow();
  });
});
