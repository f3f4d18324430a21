import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createPurchaseOutcomeWaiter, type PurchaseOutcomeWaiter } from '../../src/api/purchase-outcome-waiter.js';
import { createPurchaseWatches } from '../../src/api/purchase-watches.js';
import { closeRedis, createPersistentRedis, type RedisClient } from '../../src/shared/redis/connection.js';
import { redisKeys } from '../../src/shared/redis/keys.js';
import { createRedisPurchaseEvents } from '../../src/shared/redis/purchase-events.js';
import { recordingLogger } from '../support/logs.js';
import { eventually, randomSuffix, TEST_REDIS_URL, testConfig } from '../support/services.js';
import { purchaseWith } from '../support/purchase-fixtures.js';

/** A purchase with its outcome, as the status read gives it. */
const finished = (purchaseId: string) => purchaseWith(purchaseId, 'succeeded');

/** The real subscriber connection and waiter as the API composes them, on the test Redis. */
describe('the outcome waiter on a real Redis subscriber', () => {
  const opened: Array<{ waiter: PurchaseOutcomeWaiter; subscriber: RedisClient }> = [];
  const publisher = new Redis(TEST_REDIS_URL, { lazyConnect: true });

  afterAll(() => {
    publisher.disconnect();
  });

  afterEach(async () => {
    for (const { waiter, subscriber } of opened.splice(0)) {
      waiter.close();
      await closeRedis(subscriber);
    }
  });

  function compose(role: string) {
    const config = testConfig();
    const channel = redisKeys(config.REDIS_KEY_PREFIX).purchaseEvents;
    const { logger, lines } = recordingLogger();
    const warnings = () => lines.filter((line) => (line.level as number) >= 40);
    const subscriber = createPersistentRedis({ ...config, REDIS_URL: TEST_REDIS_URL }, logger, role);
    // The poll is off: only an announcement can answer.
    const events = createRedisPurchaseEvents(subscriber, channel);
    const watches = createPurchaseWatches({ events, logger });
    const waiter = createPurchaseOutcomeWaiter({ watches, logger, pollIntervalMs: 3_600_000 });
    opened.push({ waiter, subscriber });
    const subscribers = async () => {
      const [, count] = (await publisher.pubsub('NUMSUB', channel)) as [string, number];
      return Number(count);
    };
    const announce = (purchaseId: string) =>
      publisher.publish(channel, JSON.stringify({ purchaseId, status: 'succeeded' }));
    return { subscriber, waiter, watches, warnings, subscribers, announce };
  }

  it('subscribes even when started while the connection is still in its ready check', async () => {
    const { subscriber, waiter, watches, warnings, subscribers, announce } = compose(`race-${randomSuffix()}`);
    // The moment `npm start` hit: connected, ready check pending. A plain SUBSCRIBE here puts the
    // connection in subscriber mode, the ready check's INFO is refused, and ioredis reconnects
    // without the subscription.
    await new Promise<void>((resolve) => subscriber.once('connect', () => resolve()));
    expect(subscriber.status).toBe('connect');
    const started = watches.start();

    await started;
    expect(subscriber.status).toBe('ready');
    expect(await subscribers()).toBe(1);
    const purchaseId = crypto.randomUUID();
    const wait = waiter.waitForOutcome(purchaseId, { deadline: Date.now() + 5_000 }, async () => finished(purchaseId))!;
    await announce(purchaseId);
    await expect(wait.outcome).resolves.toEqual(finished(purchaseId));
    // Give a failed ready check time to show: it comes right after the first replies.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(warnings()).toEqual([]);
    expect(await subscribers()).toBe(1);
  });

  it('is still woken by announcements after its connection was dropped', async () => {
    const name = `reconnect-${randomSuffix()}`;
    const { waiter, watches, subscribers, announce } = compose(name);
    await watches.start();
    expect(await subscribers()).toBe(1);

    const clients = (await publisher.client('LIST')) as string;
    const id = /id=(\d+) .*name=payonce-(\S+)/.exec(clients.split('\n').find((line) => line.includes(name)) ?? '');
    expect(id?.[2]).toBe(name);
    await publisher.client('KILL', 'ID', id![1]!);

    // ioredis reconnects and resubscribes, since the connection had been ready.
    await eventually(async () => ((await subscribers()) === 1 ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the waiter to resubscribe',
    });
    const purchaseId = crypto.randomUUID();
    const wait = waiter.waitForOutcome(purchaseId, { deadline: Date.now() + 5_000 }, async () => finished(purchaseId))!;
    await announce(purchaseId);
    await expect(wait.outcome).resolves.toEqual(finished(purchaseId));
  });
});
