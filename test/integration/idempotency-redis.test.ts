import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisIdempotencyStore } from '../../src/shared/redis/idempotency-store.js';
import { createRedisPurchaseStateStore } from '../../src/shared/redis/purchase-state-store.js';
import type { Purchase } from '../../src/shared/purchase/purchase.js';
import { deleteKeys, eventually, randomSuffix, TEST_REDIS_URL } from '../support/services.js';

const prefix = `test_${randomSuffix()}`;
let redis: Redis;
let states: ReturnType<typeof createRedisPurchaseStateStore>;
let store: ReturnType<typeof createRedisIdempotencyStore>;

const state = { userId: 1, productId: 2, amount: 300, status: 'queued' as const, createdAt: new Date().toISOString() };
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
/** An idempotency key no test claims, for outcomes whose claim does not matter. */
const keyOf = (purchaseId: string) => `user:9:key:unclaimed-${purchaseId}`;
/** A purchase as the state store names it (its key matters only on a Redis Cluster). */
const ref = (purchaseId: string) => ({ purchaseId, idempotencyKey: keyOf(purchaseId) });
const finishedOf = (purchaseId: string): Purchase => ({
  purchaseId,
  userId: 1,
  productId: 2,
  status: 'succeeded',
  amount: 300,
  failureReason: null,
  createdAt: new Date(state.createdAt),
  updatedAt: new Date(),
});

beforeAll(async () => {
  redis = new Redis(TEST_REDIS_URL);
  states = createRedisPurchaseStateStore({ redis, prefix });
  store = createRedisIdempotencyStore({
    redis,
    prefix,
    unfinishedTtlSeconds: 300,
    stateTtlSeconds: 3600,
    pendingTtlSeconds: 15,
  });
});

afterAll(async () => {
  await deleteKeys(prefix);
  redis.disconnect();
});

describe('idempotency claims on a real Redis', () => {
  it('lets exactly one of 50 concurrent claims win, and tells the others who holds the key', async () => {
    const key = `user:1:product:${randomSuffix()}`;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        store.claimIdempotencyKey(key, { purchaseId: id(n), fingerprint: '1/2' }, state),
      ),
    );
    const winners = results.flatMap((result, n) => (result.claimed ? [id(n)] : []));
    expect(winners).toHaveLength(1);
    for (const result of results) {
      if (!result.claimed) expect(result.existing).toEqual({ purchaseId: winners[0], fingerprint: '1/2' });
    }
    // The winner's purchase record exists, the losers' do not.
    expect(await states.getPurchaseState(ref(winners[0]!))).toMatchObject({ status: 'queued', amount: 300 });
    const losers = Array.from({ length: 50 }, (_, n) => id(n)).filter((candidate) => candidate !== winners[0]);
    expect(await redis.exists(...losers.map((loser) => states.stateKey(ref(loser))))).toBe(0);
  });

  it('decides concurrent claims of many keys in one round trip, each with its own answer', async () => {
    const keys = Array.from({ length: 30 }, () => `user:1:key:${randomSuffix()}`);
    // Load the scripts, so the batches below are exactly one EVALSHA each.
    await store.claimIdempotencyKey(`user:1:key:${randomSuffix()}`, { purchaseId: id(899), fingerprint: 'f' }, state);
    await store.confirmClaim('none', id(899));
    const sent = vi.spyOn(redis, 'sendCommand');
    try {
      // Each key twice in one batch: the first claim of a key wins, the second is told so.
      const results = await Promise.all(
        [...keys, ...keys].map((key, n) =>
          store.claimIdempotencyKey(
            key,
            { purchaseId: id(800 + n), fingerprint: `f${n % 30}` },
            { ...state, amount: n },
          ),
        ),
      );
      expect(sent).toHaveBeenCalledTimes(1);
      keys.forEach((_, n) => {
        expect(results[n]).toEqual({ claimed: true });
        expect(results[30 + n]).toEqual({
          claimed: false,
          existing: { purchaseId: id(800 + n), fingerprint: `f${n}` },
          // Not confirmed yet: its purchase may still be released.
          confirmed: false,
        });
      });
      for (const n of [0, 17, 29]) expect((await states.getPurchaseState(ref(id(800 + n))))?.amount).toBe(n);

      sent.mockClear();
      // Confirming: only the owner's confirmation extends a claim.
      const confirmed = await Promise.all(
        keys.map((key, n) => store.confirmClaim(key, id(n % 2 === 0 ? 800 + n : 830 + n))),
      );
      expect(sent).toHaveBeenCalledTimes(1);
      expect(confirmed).toEqual(keys.map((_, n) => n % 2 === 0));
      expect(await redis.ttl(`${prefix}:idem:${keys[0]}`)).toBeGreaterThan(15);
      // Not confirmed by its owner: still pending, not extended, and not deleted either.
      expect(await redis.ttl(`${prefix}:idem:${keys[1]}`)).toBeLessThanOrEqual(15);
      expect(await store.findClaim(keys[1]!)).toEqual({ purchaseId: id(801), fingerprint: 'f1' });
    } finally {
      sent.mockRestore();
    }
  });

  it('holds a new claim and its record only briefly until confirmed, then for the full TTL', async () => {
    const key = `user:1:key:${randomSuffix()}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(100), fingerprint: 'f' }, state);
    for (const pending of [`${prefix}:idem:${key}`, states.stateKey(ref(id(100)))]) {
      const ttl = await redis.ttl(pending);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(15);
    }
    expect(await store.confirmClaim(key, id(100))).toBe(true);
    expect(await redis.ttl(`${prefix}:idem:${key}`)).toBeGreaterThan(15);
    expect(await redis.ttl(states.stateKey(ref(id(100))))).toBeGreaterThan(300);
  });

  it('releases a claim only for its owner', async () => {
    const key = `user:1:key:${randomSuffix()}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(200), fingerprint: 'f' }, state);
    expect(await store.releaseClaim(key, id(201))).toBe(false);
    expect(await store.findClaim(key)).toEqual({ purchaseId: id(200), fingerprint: 'f' });
    expect(await store.confirmClaim(key, id(201))).toBe(false);
    expect(await store.releaseClaim(key, id(200))).toBe(true);
    expect(await store.findClaim(key)).toBeNull();
    expect(await states.getPurchaseState(ref(id(200)))).toBeNull();
    // Once released, the key can be claimed again.
    await expect(store.claimIdempotencyKey(key, { purchaseId: id(202), fingerprint: 'f' }, state)).resolves.toEqual({
      claimed: true,
    });
  });

  it('redirects a claim to the purchase the queue kept, dropping our record', async () => {
    const key = `user:1:key:${randomSuffix()}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(300), fingerprint: 'f' }, state);
    expect(await store.redirectClaim(key, id(300), { purchaseId: id(301), fingerprint: 'f' })).toBe(true);
    expect(await store.findClaim(key)).toEqual({ purchaseId: id(301), fingerprint: 'f' });
    expect(await states.getPurchaseState(ref(id(300)))).toBeNull();
  });

  it('keeps a claim with a fingerprint containing spaces intact', async () => {
    const key = `user:1:key:${randomSuffix()}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(400), fingerprint: 'a b c' }, state);
    expect(await store.findClaim(key)).toEqual({ purchaseId: id(400), fingerprint: 'a b c' });
  });
});

describe('purchase state records', () => {
  it('moves queued -> processing, then drops the record once Postgres holds the outcome, never back', async () => {
    const key = `user:9:key:${randomSuffix()}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(500), fingerprint: 'f' }, state);
    await states.markProcessing(ref(id(500)));
    expect((await states.getPurchaseState(ref(id(500))))?.status).toBe('processing');
    const subscriber = new Redis(TEST_REDIS_URL);
    try {
      await subscriber.subscribe(states.eventsChannel);
      const announced = new Promise<string>((resolve) =>
        subscriber.once('message', (_channel, message) => resolve(message)),
      );
      await states.markFinished(finishedOf(id(500)), { idempotencyKey: key });
      expect(JSON.parse(await announced)).toEqual({ purchaseId: id(500), status: 'succeeded' });
    } finally {
      subscriber.disconnect();
    }
    expect(await redis.exists(states.stateKey(ref(id(500))))).toBe(0);
    // A late "processing" (a slow batch) does not bring the record back.
    await states.markProcessing(ref(id(500)));
    expect(await redis.exists(states.stateKey(ref(id(500))))).toBe(0);
  });
});

describe('batched state updates', () => {
  it('update many purchases at once in one round trip each, every record and event its own', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => id(700 + i));
    await Promise.all(
      ids.map((purchaseId) =>
        store.claimIdempotencyKey(`user:9:key:${randomSuffix()}`, { purchaseId, fingerprint: 'f' }, state),
      ),
    );
    // Load the scripts first, so each batch below is exactly one EVALSHA.
    await states.markProcessing(ref(id(799)));
    await states.markFinished(finishedOf(id(799)), { idempotencyKey: keyOf(id(799)) });
    await states.markFinished(finishedOf(id(798)), { idempotencyKey: keyOf(id(798)), inPostgres: false });
    const subscriber = new Redis(TEST_REDIS_URL);
    await subscriber.subscribe(states.eventsChannel);
    const events: unknown[] = [];
    subscriber.on('message', (_channel, message) => events.push(JSON.parse(message)));
    const sent = vi.spyOn(redis, 'sendCommand');
    try {
      await Promise.all(ids.map((purchaseId) => states.markProcessing(ref(purchaseId))));
      expect(sent).toHaveBeenCalledTimes(1);
      for (const purchaseId of ids) expect((await states.getPurchaseState(ref(purchaseId)))?.status).toBe('processing');

      sent.mockClear();
      const outcomes = ids.map((purchaseId, i) => ({
        ...finishedOf(purchaseId),
        amount: 1000 + i,
        status: i % 2 === 0 ? ('succeeded' as const) : ('failed' as const),
        failureReason: i % 2 === 0 ? null : 'card_declined',
      }));
      // Recorded in Postgres: announced and dropped from Redis.
      const recorded = outcomes.slice(0, 30);
      await Promise.all(
        recorded.map((outcome) => states.markFinished(outcome, { idempotencyKey: keyOf(outcome.purchaseId) })),
      );
      expect(sent).toHaveBeenCalledTimes(1);
      expect(await redis.exists(...recorded.map(({ purchaseId }) => states.stateKey(ref(purchaseId))))).toBe(0);
      // Not recorded: Redis keeps each outcome as its only record.
      sent.mockClear();
      const unrecorded = outcomes.slice(30);
      await Promise.all(
        unrecorded.map((outcome) =>
          states.markFinished(outcome, { idempotencyKey: keyOf(outcome.purchaseId), inPostgres: false }),
        ),
      );
      expect(sent).toHaveBeenCalledTimes(1);
      for (const outcome of unrecorded) expect(await states.getPurchaseState(ref(outcome.purchaseId))).toEqual(outcome);
      await eventually(() => (events.length >= 2 * ids.length ? true : undefined));
      expect(events).toEqual([
        ...ids.map((purchaseId) => ({ purchaseId, status: 'processing' })),
        ...outcomes.map(({ purchaseId, status }) => ({ purchaseId, status })),
      ]);
    } finally {
      sent.mockRestore();
      subscriber.disconnect();
    }
  });
});

describe('outcomes Redis alone holds', () => {
  it('keep a failure that never reached Postgres for the long TTL, and drop a recorded one', async () => {
    const failed = {
      purchaseId: id(600),
      userId: 1,
      productId: 2,
      status: 'failed' as const,
      amount: 300,
      failureReason: 'retries_exhausted',
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    await states.markFinished(failed, { idempotencyKey: keyOf(id(600)), inPostgres: false });
    expect(await redis.ttl(states.stateKey(ref(id(600))))).toBeGreaterThan(6 * 24 * 3600);
    await states.markProcessing(ref(id(601)));
    await states.markFinished({ ...failed, purchaseId: id(601) }, { idempotencyKey: keyOf(id(601)) });
    expect(await redis.exists(states.stateKey(ref(id(601))))).toBe(0);
  });
});

describe("a key's lifetime", () => {
  it('blocks duplicates while the purchase is unfinished, then for the claim TTL after its outcome', async () => {
    const finishing = createRedisPurchaseStateStore({ redis, prefix, claimTtlSeconds: 5 });
    const key = `user:3:key:${randomSuffix()}`;
    const claimKey = `${prefix}:idem:${key}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(900), fingerprint: 'f' }, state);
    await store.confirmClaim(key, id(900));
    // Confirmed and unfinished: the store's unfinished TTL (300 s here), not a short window.
    expect(await redis.ttl(claimKey)).toBeGreaterThan(60);
    await finishing.markFinished(finishedOf(id(900)), { idempotencyKey: key });
    const ttl = await redis.ttl(claimKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5);
    expect(await store.findClaim(key)).toEqual({ purchaseId: id(900), fingerprint: 'f' });
  });

  it('keeps the short TTL of a purchase that finished before its claim was confirmed', async () => {
    const finishing = createRedisPurchaseStateStore({ redis, prefix, claimTtlSeconds: 5 });
    const key = `user:3:key:${randomSuffix()}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(901), fingerprint: 'f' }, state);
    // A fast worker: the outcome is announced before the API confirms the claim.
    await finishing.markFinished(finishedOf(id(901)), { idempotencyKey: key });
    expect(await store.confirmClaim(key, id(901))).toBe(true);
    expect(await redis.ttl(`${prefix}:idem:${key}`)).toBeLessThanOrEqual(5);
  });

  it('leaves a claim that belongs to another purchase alone', async () => {
    const finishing = createRedisPurchaseStateStore({ redis, prefix, claimTtlSeconds: 5 });
    const key = `user:3:key:${randomSuffix()}`;
    await store.claimIdempotencyKey(key, { purchaseId: id(902), fingerprint: 'f' }, state);
    await store.confirmClaim(key, id(902));
    await finishing.markFinished(finishedOf(id(903)), { idempotencyKey: key });
    expect(await redis.ttl(`${prefix}:idem:${key}`)).toBeGreaterThan(60);
  });

  it('reads and confirms a claim written before claims had a state (a rolling deploy) without losing its fingerprint', async () => {
    const key = `user:3:key:${randomSuffix()}`;
    await redis.set(`${prefix}:idem:${key}`, `${id(904)} 3/4`, 'EX', 60);
    expect(await store.inspectClaim(key)).toEqual({
      existing: { purchaseId: id(904), fingerprint: '3/4' },
      confirmed: true,
    });
    expect(await store.confirmClaim(key, id(904))).toBe(true);
    expect(await store.findClaim(key)).toEqual({ purchaseId: id(904), fingerprint: '3/4' });
  });
});
