import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createPurchaseOutcomeWaiter,
  type PurchaseOutcomeWaiterOptions,
} from '../../src/api/purchase-outcome-waiter.js';
import type { PurchaseStatus } from '../../src/shared/purchase/purchase.js';
import type { RedisClient } from '../../src/shared/redis/connection.js';
import { createPurchaseWatches, POLL_READS_AT_ONCE } from '../../src/api/purchase-watches.js';
import { createRedisPurchaseEvents } from '../../src/shared/redis/purchase-events.js';
import { purchaseWith } from '../support/purchase-fixtures.js';

const CHANNEL = 'test:events';

/** The part of an ioredis connection the waiter uses: its status, events and SUBSCRIBE. */
function fakeSubscriber(status = 'ready') {
  const emitter = new EventEmitter();
  const subscriber = Object.assign(emitter, {
    status,
    subscribe: vi.fn(async (_channel: string) => 1),
  });
  return {
    subscriber,
    asRedis: subscriber as unknown as RedisClient,
    announce(purchaseId: string, status: PurchaseStatus = 'succeeded') {
      subscriber.emit('message', CHANNEL, JSON.stringify({ purchaseId, status }));
    },
  };
}

function waiterWith(options: Partial<PurchaseOutcomeWaiterOptions> = {}) {
  const fake = fakeSubscriber();
  const logger = pino({ level: 'silent' });
  const watches = createPurchaseWatches({ events: createRedisPurchaseEvents(fake.asRedis, CHANNEL), logger });
  const waiter = createPurchaseOutcomeWaiter({
    watches,
    logger,
    // The poll is off unless a test turns it on.
    pollIntervalMs: 3_600_000,
    ...options,
  });
  return { waiter, watches, ...fake };
}

const purchase = purchaseWith;

const inSeconds = (seconds: number) => ({ deadline: Date.now() + seconds * 1000 });
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('createPurchaseOutcomeWaiter', () => {
  it('answers a wait from its announcement, without polling', async () => {
    const { waiter, announce } = waiterWith();
    const read = vi.fn(async () => purchase(id(1), 'succeeded'));
    const wait = waiter.waitForOutcome(id(1), inSeconds(20), read)!;
    expect(waiter.waiting()).toBe(1);
    expect(read).not.toHaveBeenCalled();

    announce(id(1));

    await expect(wait.outcome).resolves.toEqual(purchase(id(1), 'succeeded'));
    expect(read).toHaveBeenCalledTimes(1);
    expect(waiter.waiting()).toBe(0);
  });

  it('ignores announcements of other purchases, and malformed ones', async () => {
    const { waiter, announce, subscriber } = waiterWith();
    const read = vi.fn(async () => purchase(id(1), 'succeeded'));
    const wait = waiter.waitForOutcome(id(1), { deadline: Date.now() + 300 }, read)!;
    announce(id(2));
    subscriber.emit('message', CHANNEL, 'not json');
    subscriber.emit('message', 'another:channel', JSON.stringify({ purchaseId: id(1), status: 'succeeded' }));
    await expect(wait.outcome).resolves.toBeNull();
    expect(read).not.toHaveBeenCalled();
  });

  it('still answers a waiting client when the announcement is missed, by the poll', async () => {
    let reads = 0;
    const { waiter } = waiterWith({ pollIntervalMs: 10 });
    // The announcement never comes (a reconnect dropped it), but the third status read finds it.
    const wait = waiter.waitForOutcome(id(1), inSeconds(5), async () =>
      ++reads >= 3 ? purchase(id(1), 'succeeded') : purchase(id(1), 'processing'),
    )!;
    await expect(wait.outcome).resolves.toEqual(purchase(id(1), 'succeeded'));
    expect(reads).toBe(3);
    expect(waiter.waiting()).toBe(0);
  });

  it('answers null at the deadline when nothing finishes, and a failing read does not end the wait early', async () => {
    const { waiter } = waiterWith({ pollIntervalMs: 10 });
    const started = Date.now();
    const wait = waiter.waitForOutcome(id(1), { deadline: started + 1_000 }, async () => {
      throw new Error('Postgres unreachable');
    })!;
    await expect(wait.outcome).resolves.toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(waiter.waiting()).toBe(0);
  });

  it('reads again after a read that an announcement overtook', async () => {
    const { waiter, announce } = waiterWith({ pollIntervalMs: 10 });
    let release: () => void = () => {};
    const statuses: PurchaseStatus[] = ['processing', 'succeeded'];
    const read = vi.fn(async () => {
      // The first (poll) read was sent before the worker finished, and answers after its announcement.
      if (read.mock.calls.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return purchase(id(1), statuses.shift()!);
    });
    const wait = waiter.waitForOutcome(id(1), inSeconds(20), read)!;
    await vi.waitFor(() => expect(read).toHaveBeenCalledTimes(1));
    announce(id(1));
    release();
    await expect(wait.outcome).resolves.toEqual(purchase(id(1), 'succeeded'));
    expect(read).toHaveBeenCalledTimes(2);
  });

  it('ends a wait at once when its client leaves, freeing its place', async () => {
    const { waiter } = waiterWith({ maxWaiters: 1 });
    const departure = new AbortController();
    const wait = waiter.waitForOutcome(id(1), { ...inSeconds(20), signal: departure.signal }, async () => null)!;
    expect(waiter.waitForOutcome(id(2), inSeconds(20), async () => null)).toBeNull();

    departure.abort();

    await expect(wait.outcome).resolves.toBeNull();
    expect(waiter.waiting()).toBe(0);
    expect(waiter.waitForOutcome(id(2), inSeconds(20), async () => null)).not.toBeNull();
  });

  it('does not wait for a client already gone, or past its deadline', () => {
    const { waiter } = waiterWith();
    const gone = new AbortController();
    gone.abort();
    expect(waiter.waitForOutcome(id(1), { ...inSeconds(20), signal: gone.signal }, async () => null)).toBeNull();
    expect(waiter.waitForOutcome(id(2), { deadline: Date.now() - 1 }, async () => null)).toBeNull();
    expect(waiter.waiting()).toBe(0);
  });

  it('holds at most maxWaiters waits and refuses the rest until a place frees', async () => {
    const { waiter } = waiterWith({ maxWaiters: 2 });
    const first = waiter.waitForOutcome(id(1), inSeconds(20), async () => null)!;
    expect(waiter.waitForOutcome(id(2), inSeconds(20), async () => null)).not.toBeNull();
    expect(waiter.waitForOutcome(id(3), inSeconds(20), async () => null)).toBeNull();
    expect(waiter.waiting()).toBe(2);

    first.cancel();
    await expect(first.outcome).resolves.toBeNull();
    expect(waiter.waitForOutcome(id(4), inSeconds(20), async () => null)).not.toBeNull();
    expect(waiter.waiting()).toBe(2);
    waiter.close();
  });

  it('wakes every wait with null on close, and refuses new ones', async () => {
    const { waiter } = waiterWith();
    const waits = [1, 2, 3].map((n) => waiter.waitForOutcome(id(n), inSeconds(20), async () => null)!);
    const started = Date.now();
    waiter.close();
    await expect(Promise.all(waits.map((wait) => wait.outcome))).resolves.toEqual([null, null, null]);
    expect(Date.now() - started).toBeLessThan(100);
    expect(waiter.waiting()).toBe(0);
    expect(waiter.waitForOutcome(id(4), inSeconds(20), async () => null)).toBeNull();
  });

  it('subscribes only once its connection is ready', async () => {
    const { subscriber, asRedis } = fakeSubscriber('connect');
    const logger = pino({ level: 'silent' });
    const watches = createPurchaseWatches({ events: createRedisPurchaseEvents(asRedis, CHANNEL), logger });
    createPurchaseOutcomeWaiter({ watches, logger });
    const started = watches.start();
    await new Promise((resolve) => setImmediate(resolve));
    // Connected, but its ready check still pending: SUBSCRIBE now would break the connection.
    expect(subscriber.subscribe).not.toHaveBeenCalled();

    subscriber.status = 'ready';
    subscriber.emit('ready');
    await started;
    expect(subscriber.subscribe).toHaveBeenCalledTimes(1);
    expect(subscriber.subscribe).toHaveBeenCalledWith(CHANNEL);
    // Idempotent.
    await watches.start();
    expect(subscriber.subscribe).toHaveBeenCalledTimes(1);
  });

  it('reads every waiting purchase at once after a reconnect (announcements meanwhile are lost)', async () => {
    const { waiter, watches, subscriber } = waiterWith();
    await watches.start();
    const read = vi.fn(async () => purchase(id(1), 'succeeded'));
    const wait = waiter.waitForOutcome(id(1), inSeconds(20), read)!;

    subscriber.emit('ready');

    await expect(wait.outcome).resolves.toEqual(purchase(id(1), 'succeeded'));
    expect(read).toHaveBeenCalledTimes(1);
  });
});

describe('the fallback poll', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** `count` waits whose reads take `readMs` and never find an outcome; counts reads per purchase. */
  function manyWaits(count: number, readMs: number) {
    const { waiter } = waiterWith({ pollIntervalMs: 1_000, maxWaiters: 10_000 });
    const reads = new Map<string, number>();
    let inFlight = 0;
    let mostInFlight = 0;
    for (let n = 0; n < count; n++) {
      const purchaseId = id(n);
      waiter.waitForOutcome(purchaseId, inSeconds(60), async () => {
        reads.set(purchaseId, (reads.get(purchaseId) ?? 0) + 1);
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, readMs));
        inFlight--;
        return purchase(purchaseId, 'processing');
      });
    }
    return { waiter, reads, mostInFlight: () => mostInFlight };
  }

  it('reads each waiting purchase once per interval, at most POLL_READS_AT_ONCE at a time', async () => {
    const { waiter, reads, mostInFlight } = manyWaits(250, 10);

    await vi.advanceTimersByTimeAsync(999);
    expect(reads.size).toBe(0);
    // Three polls (at 1, 2 and 3 s), each three batches of 10 ms one after the other.
    await vi.advanceTimersByTimeAsync(2_050);

    // Three reads of each purchase, whatever their number; one batch at a time.
    expect(reads.size).toBe(250);
    expect(new Set(reads.values())).toEqual(new Set([3]));
    expect(mostInFlight()).toBe(POLL_READS_AT_ONCE);
    waiter.close();
  });

  it('skips an interval rather than overlap a slow poll', async () => {
    // Each batch takes 1.5 intervals: a poll of 250 waits takes 4.5 intervals.
    const { waiter, reads, mostInFlight } = manyWaits(250, 1_500);

    await vi.advanceTimersByTimeAsync(10_000);

    expect(mostInFlight()).toBe(POLL_READS_AT_ONCE);
    // Polls at 1 s (to 5.5 s) and 6 s (to 10.5 s): never more than one poll's reads at once.
    expect(Math.max(...reads.values())).toBeLessThanOrEqual(2);
    waiter.close();
  });

  it('stops polling once nobody waits', async () => {
    const { waiter, reads } = manyWaits(3, 1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reads.size).toBe(3);
    waiter.close();
    reads.clear();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(reads.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
