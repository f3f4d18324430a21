import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPurchaseClient,
  purchaseIdIn,
  type HttpResult,
  type PurchaseClient,
} from '../support/purchase-client.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { startRedisServer, type RunningRedisServer } from '../support/processes.js';
import { seedProducts, seedUsers } from '../support/services.js';
import {
  acceptPurchases,
  allReach,
  expectChargedOnceEach,
  expectOnePaymentEach,
  PATIENT_API,
  processingCount,
  submitPurchase,
} from '../support/fault-kit.js';

type RedisOptions = Parameters<typeof startRedisServer>[0] & {};

/**
 * Issue 4, item 4: the Redis that holds claims and the queue restarts while purchases are
 * queued and running. Each case runs on a redis-server of its own with AOF persistence in a
 * directory of its own, restarted on the same port from the same directory. A Redis-backend
 * behaviour: the Postgres backend has no Redis (its outage is postgres-outage.test.ts).
 */
describe.each([
  { stopSignal: 'SIGTERM' as const, appendFsync: 'everysec' as const, what: 'shut down cleanly (SIGTERM)' },
  { stopSignal: 'SIGKILL' as const, appendFsync: 'always' as const, what: 'killed (SIGKILL, appendfsync always)' },
])('Redis $what and restarted (Redis backend only)', ({ stopSignal, appendFsync }) => {
  let dir: string;
  let redis: RunningRedisServer;
  let redisOptions: RedisOptions;
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'payonce-redis-'));
    redisOptions = { appendOnly: true, appendFsync, dir };
    redis = await startRedisServer(redisOptions);
    stack = await createProcessStack({ backend: 'redis', redisUrl: redis.url });
    client = createPurchaseClient((await stack.startApi(PATIENT_API)).url);
    await stack.startWorker({ PAYMENT_DELAY_MS: '1000', WORKER_CONCURRENCY: '4' });
  });

  afterAll(async () => {
    await stack?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 quickly while it is down; afterwards every accepted purchase completes exactly once', async () => {
    const userIds = await seedUsers(stack.db, 14);
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const bodies = userIds.map((userId) => ({ userId, productId }));
    const before = await acceptPurchases(client, bodies.slice(0, 12));
    // Four being charged, eight queued behind them.
    await processingCount(client, before, 4);

    await redis.stop(stopSignal);

    const refused: HttpResult[] = [];
    for (const body of bodies.slice(12)) refused.push(await client.purchase(body));
    // Reads of accepted purchases still answer, from Postgres (issue 9: durable acceptance).
    const read = await client.getPurchase(before[0]!);
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body).toMatchObject({ purchaseId: before[0] });
    expect(read.elapsedMs).toBeLessThan(1_000);
    for (const result of refused) {
      expect(result.status, JSON.stringify(result.body)).toBe(503);
      expect(result.elapsedMs).toBeLessThan(1_000);
      expect(result.headers.get('retry-after')).toBe('1');
    }
    expect((await client.ready()).status).toBe(503);
    // Keep it down a little longer than a payment, so running jobs finish into the outage.
    await sleep(1_500);

    redis = await startRedisServer({ ...redisOptions, port: redis.port });

    // The clients refused during the outage retry until the API takes their purchases.
    const after = await Promise.all(bodies.slice(12).map((body) => submitPurchase(client, body)));
    for (const submission of after) expect(submission.outcome).toBe('accepted');
    const ids = [...before, ...after.map((submission) => submission.purchaseId)];

    // The worker reconnected by itself and finishes everything that was accepted.
    const views = await allReach(client, ids, ['succeeded', 'failed'], { timeoutMs: 30_000 });
    expect(views.map((view) => view.status)).toEqual(ids.map(() => 'succeeded'));
    expect(await stack.queueDrained()).toMatchObject({ completed: ids.length, failed: 0 });
    await expectOnePaymentEach(stack, ids, { status: 'succeeded', failure_reason: null });
    await expectChargedOnceEach(stack.db, ids, { nothingElse: true });
    expect((await client.ready()).status).toBe(200);
    // The claims survived the restart: a duplicate is still recognised.
    const duplicate = await client.purchase(bodies[0]!);
    expect(duplicate.status).toBe(204);
    expect(purchaseIdIn(duplicate.headers.get('location'))).toBe(before[0]);
  });
});
