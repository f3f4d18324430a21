import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/shared/redis/keys.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { jsonLogLines, type RunningProcess } from '../support/processes.js';
import { createPurchaseClient } from '../support/purchase-client.js';
import { eventually, seedUserAndProduct, TEST_REDIS_URL } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** Every line a process logged at warn or above (pino levels 40+), with its message. */
const warnings = (process: RunningProcess) =>
  jsonLogLines(process.output())
    .filter((line) => Number(line.level) >= 40)
    .map(({ msg, err }) => ({ msg, err }));

/**
 * The API process as a new user starts it: its Redis connections come up without a warning, and
 * its events connection ends up subscribed, so `Prefer: wait` is answered by the worker's
 * announcement, not by polling.
 */
describe('API start-up and its Redis connections', () => {
  let stack: ProcessStack;
  let inspector: Redis;
  let proxy: TcpProxy;

  beforeAll(async () => {
    stack = await createProcessStack();
    inspector = new Redis(TEST_REDIS_URL);
    proxy = await startTcpProxy({ port: Number(new URL(TEST_REDIS_URL).port || 6379) });
  });

  afterAll(async () => {
    await stack?.close();
    inspector?.disconnect();
    await proxy?.close();
  });

  /** How many connections listen for this stack's purchase announcements. */
  async function announcementListeners(): Promise<number> {
    const [, count] = (await inspector.pubsub('NUMSUB', redisKeys(stack.prefix).purchaseEvents)) as [string, number];
    return Number(count);
  }

  async function untilReady(url: string): Promise<void> {
    await eventually(
      async () => {
        const ready = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2_000) });
        return ready.status === 200 ? true : undefined;
      },
      { timeoutMs: 15_000, what: 'the API to be ready' },
    );
    // A failed ready check shows within a round trip of the first replies; leave it time to.
    await sleep(500);
  }

  async function untilSubscribed(): Promise<void> {
    await eventually(async () => ((await announcementListeners()) === 1 ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the API to listen for announcements',
    });
  }

  it('logs no warning or error at start-up, from the API or the worker', async () => {
    const api = await stack.startApi({ LOG_LEVEL: 'info' });
    const worker = await stack.startWorker({ LOG_LEVEL: 'info' });
    try {
      await untilReady(api.url);
      expect(warnings(api)).toEqual([]);
      expect(warnings(worker)).toEqual([]);
      await untilSubscribed();
    } finally {
      await worker.stop();
      await api.stop();
    }
  });

  it('subscribes though Redis answers its first commands late, and answers Prefer: wait by the announcement alone', async () => {
    // The race `npm start` lost: the events connection is up, its ready check pending, when the
    // API subscribes. Holding every byte until the API has asked makes it happen every time.
    proxy.cut({ mode: 'stall' });
    const api = await stack.startApi({
      LOG_LEVEL: 'info',
      REDIS_URL: proxy.rewrite(TEST_REDIS_URL),
      // The fallback poll is off: only the announcement can answer within the wait.
      WAIT_POLL_INTERVAL_MS: '600000',
    });
    await sleep(500);
    proxy.restore();

    await untilReady(api.url);
    expect(warnings(api)).toEqual([]);
    await untilSubscribed();

    await stack.startWorker({ PAYMENT_DELAY_MS: '200' });
    const { userId, productId } = await seedUserAndProduct(stack.db);
    const result = await createPurchaseClient(api.url).purchase({ userId, productId }, { prefer: 'wait=10' });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ status: 'succeeded' });
    expect(result.elapsedMs).toBeLessThan(8_000);
    expect(warnings(api)).toEqual([]);
  });
});
