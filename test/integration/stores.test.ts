import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/shared/config.js';
import { createResources } from '../../src/shared/lifecycle.js';
import type { Purchase, PurchaseJob } from '../../src/shared/purchase/purchase.js';
import type { PurchaseStores } from '../../src/shared/purchase/purchase-stores.js';
import { createPaymentsRepository } from '../../src/shared/purchase/payments-repository.js';
import { createPurchasesRepository } from '../../src/shared/purchase/purchases-repository.js';
import { openPurchaseStores } from '../../src/shared/stores.js';
import { backendEnv } from '../support/backends.js';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis-cluster.js';
import {
  createTestDatabase,
  deleteKeys,
  eventually,
  randomSuffix,
  seedUserAndProduct,
  TEST_REDIS_URL,
  testConfig,
  type TestDatabase,
} from '../support/services.js';

const logger = pino({ level: 'silent' });
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Where the contract runs: each store backend, and the Redis backend on a Redis Cluster of the test's own. */
const TARGETS = [
  { name: 'redis', backend: 'redis', cluster: false },
  { name: 'postgres', backend: 'postgres', cluster: false },
  { name: 'redis (on a Redis Cluster)', backend: 'redis', cluster: true },
] as const;

/**
 * The contract every store backend keeps (STORE_BACKEND): the idempotency claims' semantics, the
 * in-flight states and the announcements, each checked on the real Redis (single and cluster)
 * and the real Postgres.
 */
describe.each(TARGETS)('the $name store backend', ({ backend, cluster }) => {
  let database: TestDatabase;
  let config: Config;
  let stores: PurchaseStores;
  const resources = createResources(logger);
  let redisCluster: RunningRedisCluster | undefined;
  let userId: number;
  let productId: number;

  beforeAll(async () => {
    database = await createTestDatabase();
    if (cluster) redisCluster = await startRedisCluster();
    config = testConfig({
      DATABASE_URL: database.url,
      ...backendEnv(backend, TEST_REDIS_URL),
      ...redisCluster?.env,
      IDEMPOTENCY_PENDING_TTL_SECONDS: '1',
      IDEMPOTENCY_TTL_SECONDS: '1',
    });
    stores = openPurchaseStores(config, { db: database.db, logger, resources, role: 'worker' });
    ({ userId, productId } = await seedUserAndProduct(database.db, { price: 300 }));
  });

  afterAll(async () => {
    await resources.close();
    if (backend === 'redis' && !cluster) await deleteKeys(config.REDIS_KEY_PREFIX);
    await redisCluster?.stop();
    await database.drop();
  });

  const newKey = () => `user:1:key:${randomSuffix()}`;
  const claimState = {
    userId: 1,
    productId: 1,
    amount: 300,
    status: 'queued' as const,
    createdAt: new Date().toISOString(),
  };
  const claim = (key: string, purchaseId: string, fingerprint = '1/2') =>
    stores.idempotency.claimIdempotencyKey(key, { purchaseId, fingerprint }, claimState);

  /** What the API does before its claim is confirmed: the purchase is recorded in Postgres. */
  async function accept(purchaseId: string, idempotencyKey: string): Promise<PurchaseJob> {
    const job = {
      purchaseId,
      accountId: database.account.id,
      userId,
      productId,
      amount: 300,
      idempotencyKey,
      acceptedAt: new Date().toISOString(),
    };
    await createPurchasesRepository({ db: database.db }).recordAccepted(job);
    return job;
  }
  const finished = (job: PurchaseJob, status: 'succeeded' | 'failed' = 'succeeded'): Purchase => ({
    purchaseId: job.purchaseId,
    userId: job.userId,
    productId: job.productId,
    status,
    amount: job.amount,
    failureReason: status === 'failed' ? 'card_declined' : null,
    createdAt: new Date(job.acceptedAt),
    updatedAt: new Date(),
  });

  it('lets exactly one of 50 concurrent claims of a key win and tells the others who holds it', async () => {
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 50 }, (_, n) => claim(key, id(n))));
    const winners = results.flatMap((result, n) => (result.claimed ? [id(n)] : []));
    expect(winners).toHaveLength(1);
    for (const result of results) {
      if (!result.claimed) {
        expect(result).toEqual({
          claimed: false,
          existing: { purchaseId: winners[0], fingerprint: '1/2' },
          confirmed: false,
        });
      }
    }
    expect(await stores.idempotency.findClaim(key)).toEqual({ purchaseId: winners[0], fingerprint: '1/2' });
  });

  it('decides concurrent claims of many keys, each twice, first claim first', async () => {
    const keys = Array.from({ length: 30 }, newKey);
    const results = await Promise.all([...keys, ...keys].map((key, n) => claim(key, id(100 + n), `f${n % 30}`)));
    keys.forEach((_, n) => {
      expect(results[n]).toEqual({ claimed: true });
      expect(results[30 + n]).toEqual({
        claimed: false,
        existing: { purchaseId: id(100 + n), fingerprint: `f${n}` },
        confirmed: false,
      });
    });
  });

  it('lets a pending claim lapse after the pending TTL, and keeps a confirmed one', async () => {
    const [pendingKey, confirmedKey] = [newKey(), newKey()];
    await claim(pendingKey, id(200));
    await claim(confirmedKey, id(201));
    await accept(id(201), confirmedKey);
    expect(await stores.idempotency.confirmClaim(confirmedKey, id(201))).toBe(true);
    expect(await stores.idempotency.inspectClaim(confirmedKey)).toMatchObject({ confirmed: true });
    await sleep(1_300);
    expect(await stores.idempotency.inspectClaim(pendingKey)).toBeNull();
    expect(await claim(pendingKey, id(202))).toEqual({ claimed: true });
    expect(await stores.idempotency.inspectClaim(confirmedKey)).toEqual({
      existing: { purchaseId: id(201), fingerprint: '1/2' },
      confirmed: true,
    });
    expect(await claim(confirmedKey, id(203))).toMatchObject({ claimed: false, existing: { purchaseId: id(201) } });
  });

  it('confirms, releases and redirects a claim only for the purchase that holds it', async () => {
    const key = newKey();
    await claim(key, id(300));
    expect(await stores.idempotency.confirmClaim(key, id(301))).toBe(false);
    expect(await stores.idempotency.releaseClaim(key, id(301))).toBe(false);
    expect(await stores.idempotency.redirectClaim(key, id(301), { purchaseId: id(302), fingerprint: '1/2' })).toBe(
      false,
    );
    expect(await stores.idempotency.findClaim(key)).toEqual({ purchaseId: id(300), fingerprint: '1/2' });

    expect(await stores.idempotency.redirectClaim(key, id(300), { purchaseId: id(302), fingerprint: '1/2' })).toBe(
      true,
    );
    expect(await stores.idempotency.inspectClaim(key)).toEqual({
      existing: { purchaseId: id(302), fingerprint: '1/2' },
      confirmed: true,
    });
    expect(await stores.idempotency.releaseClaim(key, id(300))).toBe(false);
    expect(await stores.idempotency.releaseClaim(key, id(302))).toBe(true);
    expect(await stores.idempotency.findClaim(key)).toBeNull();
    expect(await claim(key, id(303))).toEqual({ claimed: true });
  });

  it('follows a purchase from queued to processing to its outcome, and announces each change once', async () => {
    const events = stores.openEvents();
    const heard: string[] = [];
    events.onMessage((payload) => heard.push(payload));
    await events.start();

    const key = newKey();
    await claim(key, id(400));
    const job = await accept(id(400), key);
    await stores.idempotency.confirmClaim(key, id(400));
    const ref = { purchaseId: job.purchaseId, idempotencyKey: key };
    expect(await stores.states.getPurchaseState(ref)).toMatchObject({ status: 'queued', amount: 300 });
    await stores.states.markProcessing(ref);
    expect(await stores.states.getPurchaseState(ref)).toMatchObject({ status: 'processing' });

    await createPaymentsRepository({ db: database.db }).recordPayment(job, {
      status: 'succeeded',
      failureReason: null,
    });
    // A second mark (a redelivered job) changes nothing and announces nothing.
    await stores.states.markProcessing(ref);
    await stores.states.markFinished(finished(job), { idempotencyKey: key });
    await eventually(async () => (heard.length >= 2 ? true : undefined), { what: 'the announcements' });
    // Never backwards once finished, and nothing more announced.
    await stores.states.markProcessing(ref);
    expect((await stores.states.getPurchaseState(ref))?.status).not.toBe('queued');
    await sleep(200);
    expect(heard.map((payload) => JSON.parse(payload) as unknown)).toEqual([
      { purchaseId: job.purchaseId, status: 'processing' },
      { purchaseId: job.purchaseId, status: 'succeeded' },
    ]);
  });

  it('starts the key on its last IDEMPOTENCY_TTL_SECONDS at the outcome, and a late confirmation keeps that', async () => {
    const key = newKey();
    await claim(key, id(500));
    const job = await accept(id(500), key);
    await createPaymentsRepository({ db: database.db }).recordPayment(job, {
      status: 'succeeded',
      failureReason: null,
    });
    await stores.states.markFinished(finished(job), { idempotencyKey: key });
    // A fast worker finished before the API confirmed: the confirmation must not lengthen the claim.
    expect(await stores.idempotency.confirmClaim(key, id(500))).toBe(true);
    expect(await stores.idempotency.inspectClaim(key)).toMatchObject({ confirmed: true });
    await sleep(1_300);
    expect(await stores.idempotency.findClaim(key)).toBeNull();
    expect(await claim(key, id(501))).toEqual({ claimed: true });
  });

  it("never shortens another purchase's claim on the same key", async () => {
    const key = newKey();
    await claim(key, id(600));
    await accept(id(600), key);
    await stores.idempotency.confirmClaim(key, id(600));
    const stranger = await accept(id(601), key);
    await stores.states.markFinished(finished(stranger, 'failed'), { idempotencyKey: key });
    await sleep(1_300);
    expect(await stores.idempotency.findClaim(key)).toEqual({ purchaseId: id(600), fingerprint: '1/2' });
  });

  it('keeps an outcome that the payments table could not take as the purchase state', async () => {
    const key = newKey();
    await claim(key, id(700));
    const job = await accept(id(700), key);
    await stores.idempotency.confirmClaim(key, id(700));
    const outcome = { ...finished(job, 'failed'), failureReason: 'user_or_product_gone' };
    await stores.states.markFinished(outcome, { idempotencyKey: key, inPostgres: false });
    expect(await stores.states.getPurchaseState({ purchaseId: job.purchaseId, idempotencyKey: key })).toMatchObject({
      purchaseId: job.purchaseId,
      status: 'failed',
      failureReason: 'user_or_product_gone',
    });
  });

  it('updates many purchases at once, every claim, state and announcement its own', async () => {
    // On a cluster these batches span many hash slots: each script call must stay within one.
    const events = stores.openEvents();
    const heard: unknown[] = [];
    events.onMessage((payload) => heard.push(JSON.parse(payload)));
    await events.start();
    const keys = Array.from({ length: 24 }, newKey);
    const ids = keys.map((_, n) => id(900 + n));
    expect(await Promise.all(keys.map((key, n) => claim(key, ids[n]!)))).toEqual(keys.map(() => ({ claimed: true })));
    const jobs = await Promise.all(keys.map((key, n) => accept(ids[n]!, key)));
    expect(await Promise.all(keys.map((key, n) => stores.idempotency.confirmClaim(key, ids[n]!)))).toEqual(
      keys.map(() => true),
    );
    const refs = keys.map((key, n) => ({ purchaseId: ids[n]!, idempotencyKey: key }));
    await Promise.all(refs.map((ref) => stores.states.markProcessing(ref)));
    const states = await Promise.all(refs.map((ref) => stores.states.getPurchaseState(ref)));
    expect(states.map((state) => state?.status)).toEqual(keys.map(() => 'processing'));

    const recorded = jobs.slice(0, 12);
    const unrecorded = jobs.slice(12);
    const payments = createPaymentsRepository({ db: database.db });
    for (const job of recorded) await payments.recordPayment(job, { status: 'succeeded', failureReason: null });
    await Promise.all([
      ...recorded.map((job) => stores.states.markFinished(finished(job), { idempotencyKey: job.idempotencyKey })),
      ...unrecorded.map((job) =>
        stores.states.markFinished(finished(job, 'failed'), { idempotencyKey: job.idempotencyKey, inPostgres: false }),
      ),
    ]);
    for (const job of unrecorded) {
      const ref = { purchaseId: job.purchaseId, idempotencyKey: job.idempotencyKey };
      expect(await stores.states.getPurchaseState(ref)).toMatchObject({ purchaseId: job.purchaseId, status: 'failed' });
    }
    await eventually(async () => (heard.length >= 2 * jobs.length ? true : undefined), { what: 'every announcement' });
    expect(heard).toHaveLength(2 * jobs.length);
    expect(heard).toEqual(
      expect.arrayContaining([
        ...jobs.map(({ purchaseId }) => ({ purchaseId, status: 'processing' })),
        ...recorded.map(({ purchaseId }) => ({ purchaseId, status: 'succeeded' })),
        ...unrecorded.map(({ purchaseId }) => ({ purchaseId, status: 'failed' })),
      ]),
    );
  });

  it('keeps a purchase working under keys holding braces, which Redis Cluster reads as hash tags', async () => {
    const suffix = randomSuffix();
    const keys = ['}', '{', '{}', '}{', `{${suffix}}`, `a}b{c`].map((tail) => `user:1:key:${tail}${suffix}`);
    for (const [n, key] of [...keys, `}${suffix}`, `{}${suffix}`].entries()) {
      const purchaseId = id(1000 + n);
      expect(await claim(key, purchaseId), key).toEqual({ claimed: true });
      const job = await accept(purchaseId, key);
      expect(await stores.idempotency.confirmClaim(key, purchaseId), key).toBe(true);
      const ref = { purchaseId, idempotencyKey: key };
      await stores.states.markProcessing(ref);
      expect((await stores.states.getPurchaseState(ref))?.status, key).toBe('processing');
      await stores.states.markFinished(finished(job, 'failed'), { idempotencyKey: key, inPostgres: false });
      expect((await stores.states.getPurchaseState(ref))?.status, key).toBe('failed');
      expect(
        await stores.idempotency.redirectClaim(key, purchaseId, { purchaseId: id(1100 + n), fingerprint: 'x' }),
      ).toBe(true);
      expect(await stores.idempotency.releaseClaim(key, id(1100 + n)), key).toBe(true);
      expect(await stores.idempotency.findClaim(key), key).toBeNull();
    }
  });

  it.runIf(backend === 'postgres')('sweeps claims long expired, and no live one', async () => {
    const [expired, live] = [newKey(), newKey()];
    await claim(expired, id(800));
    await claim(live, id(801));
    await stores.idempotency.confirmClaim(live, id(801));
    await database
      .db('idempotency_claims')
      .where({ key: expired })
      .update({ expires_at: new Date(Date.now() - 120_000) });
    await stores.sweepExpired!();
    const left = (await database.db('idempotency_claims').whereIn('key', [expired, live]).pluck('key')) as string[];
    expect(left).toEqual([live]);
  });
});
