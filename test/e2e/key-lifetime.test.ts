import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPurchaseClient, purchaseIdIn, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { randomSuffix, seedUserAndProduct } from '../support/services.js';
import { startTestSqs, type TestSqs } from '../support/sqs.js';
import type { RunningWorker } from '../support/processes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** The key's window after the outcome, short so that a purchase can outlive it while retrying. */
const TTL_SECONDS = 2;

/**
 * Issue 9, item 1: an idempotency key must block duplicates for as long as its purchase is
 * unfinished, however long its retries take, and for IDEMPOTENCY_TTL_SECONDS after the outcome.
 * The worker reaches Postgres through a proxy of this file's own, cut so that the purchase keeps
 * retrying past the TTL; the client retries with the same key meanwhile.
 */
/** BullMQ on either store backend, and SQS (which runs on the Redis backend only). */
const SETUPS = [
  ...STORE_BACKENDS.map((backend) => ({ driver: 'bullmq' as const, backend })),
  { driver: 'sqs' as const, backend: 'redis' as const },
];

describe.each(SETUPS)(
  'QUEUE_DRIVER=$driver, $backend backend: a key outlives its unfinished purchase',
  ({ driver, backend }) => {
    let stack: ProcessStack;
    let proxy: TcpProxy;
    let sqs: TestSqs | undefined;
    let client: PurchaseClient;
    let worker: RunningWorker;

    beforeAll(async () => {
      stack = await createProcessStack({ backend });
      proxy = await startTcpProxy({ port: Number(new URL(stack.databaseUrl).port || 5432) });
      let queueEnv: Record<string, string> = {};
      if (driver === 'sqs') {
        sqs = await startTestSqs();
        queueEnv = {
          ...sqs.processEnv(await sqs.createFifoQueue({ maxReceiveCount: 20 })),
          SQS_WAIT_TIME_SECONDS: '1',
        };
      }
      const keys = { IDEMPOTENCY_TTL_SECONDS: String(TTL_SECONDS), JOB_ATTEMPTS: '20', JOB_BACKOFF_MS: '1000' };
      client = createPurchaseClient((await stack.startApi({ ...keys, ...queueEnv })).url);
      worker = await stack.startWorker({ ...keys, ...queueEnv, DATABASE_URL: proxy.rewrite(stack.databaseUrl) });
    });

    afterAll(async () => {
      proxy?.restore();
      await stack?.close();
      await proxy?.close();
      await sqs?.stop();
    });

    /** For a timeout's message: the purchase's job, and what the worker logged. */
    async function whereStuck(purchaseId: string): Promise<string> {
      const job = driver === 'bullmq' ? await stack.getJob(purchaseId) : undefined;
      const state = job && {
        state: await job.getState(),
        attemptsMade: job.attemptsMade,
        failedReason: job.failedReason,
      };
      return `job: ${JSON.stringify(state)}\nworker:\n${worker.output()}`;
    }

    it('answers 204 with the original while it retries past the TTL, and frees the key the TTL after its outcome', async () => {
      const { userId, productId } = await seedUserAndProduct(stack.db, { price: 700 });
      const body = { userId, productId };
      const idempotencyKey = `order-${randomSuffix()}`;
      proxy.cut({ mode: 'reset' });
      const first = await client.purchase(body, { idempotencyKey });
      expect(first.status).toBe(202);
      const purchaseId = purchaseIdIn(first.headers.get('location'));

      // Past the TTL, the purchase is still failing its writes: the key must still hold.
      await sleep((TTL_SECONDS + 1) * 1000);
      const retried = await client.purchase(body, { idempotencyKey });
      expect(retried.status).toBe(204);
      expect(purchaseIdIn(retried.headers.get('location'))).toBe(purchaseId);
      const unfinished = await client.getPurchase(purchaseId);
      expect(unfinished.status).toBe(200);
      expect(['queued', 'processing']).toContain(unfinished.body?.status);

      proxy.restore();
      await client.purchaseReaches(purchaseId, ['succeeded'], 30_000).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await whereStuck(purchaseId)}`);
      });
      const afterOutcome = await client.purchase(body, { idempotencyKey });
      expect(afterOutcome.status).toBe(204);
      expect(purchaseIdIn(afterOutcome.headers.get('location'))).toBe(purchaseId);
      expect(await stack.db('payments').where({ id: purchaseId }).count({ n: '*' })).toEqual([{ n: '1' }]);

      if (driver === 'bullmq') {
        // The TTL after the outcome has passed: the key is free for a new purchase. (On SQS the
        // producer remembers a key's job for SQS's 5-minute deduplication window at least, so a
        // reuse within it still folds into the first purchase; the README says so.)
        await sleep((TTL_SECONDS + 1) * 1000);
        const reused = await client.purchase(body, { idempotencyKey });
        expect(reused.status).toBe(202);
        expect(purchaseIdIn(reused.headers.get('location'))).not.toBe(purchaseId);
      }
    }, 60_000);
  },
);
