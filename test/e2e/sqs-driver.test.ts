import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, startWorker, type RunningProcess, type RunningWorker } from '../support/processes.js';
import { sample, scrapeMetrics } from '../support/prometheus.js';
import {
  createTestDatabase,
  deleteKeys,
  eventually,
  seedProducts,
  seedUserAndProduct,
  seedUsers,
  TEST_REDIS_URL,
  testConfig,
  type TestDatabase,
} from '../support/services.js';
import { startTestSqs, type TestFifoQueue, type TestSqs } from '../support/sqs.js';
import {
  createPurchaseClient,
  purchaseIdIn,
  statusCounts,
  useApiKey,
  type PurchaseClient,
} from '../support/purchase-client.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** The real API and worker processes with QUEUE_DRIVER=sqs, on an SQS FIFO queue served by fauxqs. */
describe('QUEUE_DRIVER=sqs end to end', () => {
  let sqs: TestSqs;
  let queue: TestFifoQueue;
  let database: TestDatabase;
  let prefix: string;
  let client: PurchaseClient;
  const started: RunningProcess[] = [];
  let worker: RunningWorker;

  beforeAll(async () => {
    [sqs, database] = await Promise.all([startTestSqs(), createTestDatabase()]);
    queue = await sqs.createFifoQueue({ maxReceiveCount: 5 });
    prefix = testConfig().REDIS_KEY_PREFIX;
    const env = {
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      DATABASE_POOL_MAX: '10',
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      PAYMENT_DELAY_MS: '0',
      PAYMENT_DECLINE_RATE: '0',
      JOB_ATTEMPTS: '5',
      SQS_WAIT_TIME_SECONDS: '1',
      SHUTDOWN_TIMEOUT_MS: '5000',
      ...sqs.processEnv(queue),
    };
    const api = await startApi({ ...env, LOG_LEVEL: 'warn' });
    started.push(api);
    // startWorker waits for the "worker started" line, logged at info.
    worker = await startWorker({ ...env, LOG_LEVEL: 'info', ADMIN_TOKEN });
    started.push(worker);
    useApiKey(api.url, database.account.apiKey);
    client = createPurchaseClient(api.url);
  });

  afterAll(async () => {
    for (const running of started.reverse()) await running.stop('SIGTERM', 10_000).catch(() => {});
    await database?.drop();
    await deleteKeys(prefix);
    await sqs?.stop();
  });

  const queueDrained = () =>
    eventually(
      async () => {
        const counts = await sqs.counts(queue.url);
        return counts.visible + counts.inFlight + counts.delayed === 0 ? counts : undefined;
      },
      { timeoutMs: 20_000, what: 'the SQS queue to drain' },
    );

  it('reports the queue in readiness', async () => {
    const ready = await client.ready();
    expect({ status: ready.status, body: ready.body }, started[0]!.output()).toEqual({
      status: 200,
      body: { status: 'ok', checks: { postgres: 'ok', redis: 'ok', queue: 'ok' } },
    });
  });

  it('accepts one of 50 identical concurrent purchases, answers the other 49 with 204, and charges once', async () => {
    const { userId, productId, price } = await seedUserAndProduct(database.db);

    const results = await Promise.all(Array.from({ length: 50 }, () => client.purchase({ userId, productId })));

    expect(statusCounts(results)).toEqual({ 202: 1, 204: 49 });
    const purchaseId = purchaseIdIn(results.find((result) => result.status === 202)!.headers.get('location'));
    for (const result of results) expect(purchaseIdIn(result.headers.get('location'))).toBe(purchaseId);
    expect(await client.purchaseReaches(purchaseId, ['succeeded', 'failed'])).toMatchObject({
      status: 'succeeded',
      amount: price,
    });
    await queueDrained();
    const rows = await database.db('payments').where({ user_id: userId, product_id: productId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: purchaseId, status: 'succeeded', amount: price });
    expect(await sqs.counts(queue.deadLetterUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('accepts 200 concurrent distinct purchases and records 200 succeeded payments', async () => {
    const userIds = await seedUsers(database.db, 100);
    const productIds = await seedProducts(database.db, 2, 2500);
    const requests = userIds.flatMap((userId) => productIds.map((productId) => ({ userId, productId })));

    const results = await Promise.all(requests.map((body) => client.purchase(body)));

    expect(statusCounts(results)).toEqual({ 202: 200 });
    const expected = new Map(
      results.map((result, index) => [purchaseIdIn(result.headers.get('location')), requests[index]!]),
    );
    expect(expected.size).toBe(200);
    const rows = await eventually(
      async () => {
        const found = await database.db('payments').whereIn('user_id', userIds);
        return found.length >= 200 ? found : undefined;
      },
      { timeoutMs: 30_000, what: '200 payments' },
    );
    expect(rows).toHaveLength(200);
    for (const row of rows) {
      expect(row).toMatchObject({ status: 'succeeded', amount: 2500 });
      expect(expected.get(row.id)).toEqual({ userId: row.user_id, productId: row.product_id });
    }
    await queueDrained();
  });

  it('answers Prefer: wait with the finished purchase', async () => {
    const { userId, productId, price } = await seedUserAndProduct(database.db);

    const result = await client.purchase({ userId, productId }, { prefer: 'wait=20' });

    expect(result.status).toBe(200);
    expect(result.headers.get('preference-applied')).toBe('wait=20');
    expect(result.body).toMatchObject({ userId, productId, status: 'succeeded', amount: price });
    expect(await database.db('payments').where({ id: purchaseIdIn(result.headers.get('location')) })).toHaveLength(1);
  });

  it('counts on the SQS poller what a BullMQ worker counts: every payment, and a malformed message', async () => {
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '{"purchaseId":42}',
        MessageGroupId: 'malformed',
        MessageDeduplicationId: 'malformed',
      }),
    );
    await queueDrained();
    const [{ count }] = (await database.db('payments').count({ count: '*' })) as [{ count: string }];
    expect(Number(count)).toBeGreaterThan(200);
    const text = await (await scrapeMetrics(worker.url!, ADMIN_TOKEN)).text();
    expect(sample(text, 'payonce_worker_purchases_total{outcome="succeeded"}')).toBe(Number(count));
    expect(sample(text, 'payonce_worker_job_duration_seconds_count{outcome="succeeded"}')).toBe(Number(count));
    expect(sample(text, 'payonce_worker_failed_attempts_total{result="malformed"}')).toBe(1);
    expect(sample(text, 'payonce_worker_failed_attempts_total{result="retry"}')).toBe(0);
  });

  it('stops the worker cleanly on SIGTERM', async () => {
    expect(await worker.stop('SIGTERM', 10_000)).toBe(0);
    expect(worker.output()).toContain('shut down cleanly');
  });
});
