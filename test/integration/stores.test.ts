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
import { backendEnv, STORE_BACKENDS } from '../support/backends.js';
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

/**
 * The contract every store backend keeps (STORE_BACKEND): the idempotency claims' semantics, the
 * in-flight states and the announcements, each checked on the real Redis and the real Postgres.
 */
describe.each(STORE_BACKENDS)('the %s store backend', (backend) => {
  let database: TestDatabase;
  let config: Config;
  let stores: PurchaseStores;
  const resources = createResources(logger);
  let userId: number;
  let productId: number;

  beforeAll(async () => {
    database = await createTestDatabase();
    config = testConfig({
      DATABASE_URL: database.url,
      ...backendEnv(backend, TEST_REDIS_URL),
      IDEMPOTENCY_PENDING_TTL_SECONDS: '1',
      IDEMPOTENCY_TTL_SECONDS: '1',
    });
    stores = openPurchaseStores(config, { db: database.db, logger, resources, role: 'worker' });
    ({ userId, productId } = await seedUserAndProduct(database.db, { price: 300 }));
  });

  afterAll(async () => {
    await resources.close();
    if (backend === 'redis') await deleteKeys(config.REDIS_KEY_PREFIX);
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

  it('follows a purchase from queued to processing to its outcome, and announces the outcome', async () => {
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
    await stores.states.markFinished(finished(job), { idempotencyKey: key });
    await eventually(async () => (heard.length > 0 ? true : undefined), { what: 'the announcement' });
    expect(heard.map((payload) => JSON.parse(payload) as unknown)).toEqual([
      { purchaseId: job.purchaseId, status: 'succeeded' },
    ]);
    // Never backwards once finished.
    await stores.states.markProcessing(ref);
    expect((await stores.states.getPurchaseState(ref))?.status).not.toBe('queued');
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
