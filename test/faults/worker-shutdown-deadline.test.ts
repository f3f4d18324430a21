import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPurchaseClient, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { seedProducts, seedUsers } from '../support/services.js';
import {
  acceptPurchases,
  allReach,
  expectChargedOnceEach,
  expectOnePaymentEach,
  finishedIn,
  logged,
  PATIENT_API,
  processingCount,
} from '../support/fault-kit.js';

/**
 * Issue 4, item 2: SIGTERM under load when the payments outlast the shutdown deadline. (The
 * e2e worker-shutdown test covers the case where they finish within it.)
 */
describe.each(STORE_BACKENDS)('worker SIGTERM with payments longer than its deadline (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    client = createPurchaseClient((await stack.startApi(PATIENT_API)).url);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('exits 0 at the deadline, hands back what it held, and another worker finishes everything once', async () => {
    const concurrency = 5;
    const stopping = await stack.startWorker({
      PAYMENT_DELAY_MS: '3000',
      WORKER_CONCURRENCY: String(concurrency),
      SHUTDOWN_TIMEOUT_MS: '500',
    });
    const userIds = await seedUsers(stack.db, 15);
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const bodies = userIds.map((userId) => ({ userId, productId }));
    const firstIds = await acceptPurchases(client, bodies.slice(0, 12));
    // A full worker: five payments running, seven waiting behind them.
    await processingCount(client, firstIds, concurrency);
    expect(await stack.jobCounts()).toMatchObject({ active: concurrency, waiting: 7 });

    const signalledAt = performance.now();
    const exited = stopping.stop('SIGTERM', 15_000);
    // Load keeps arriving while the worker shuts down.
    const lateIds = await acceptPurchases(client, bodies.slice(12));
    const exitCode = await exited;
    const shutdownMs = performance.now() - signalledAt;

    expect(exitCode, stopping.output()).toBe(0);
    // Well before the 3 s payments could have finished: it did not wait for them.
    expect(shutdownMs).toBeLessThan(2_500);
    const handedBack = (output: string) => output.match(/handed back to the queue at shutdown/g)?.length ?? 0;
    await logged(stopping, (output) => handedBack(output) >= concurrency, 'the hand-back log lines');
    expect(handedBack(stopping.output())).toBe(concurrency);
    expect(finishedIn(stopping.output()).size).toBe(0);
    expect(await stack.payments()).toEqual([]);
    // Nor charged: the payments it handed back were still within the gateway's latency.
    expect(await stack.db('gateway_charges')).toEqual([]);
    // Handed back at once, not left for the stalled-job check: nothing is active any more.
    expect(await stack.jobCounts()).toMatchObject({ active: 0, waiting: 15, completed: 0, failed: 0 });

    // Default stalled interval and lock (30 s): this worker can only finish in time if the jobs
    // really are back in the queue.
    const successor = await stack.startWorker({ PAYMENT_DELAY_MS: '100', WORKER_CONCURRENCY: '20' });
    const ids = [...firstIds, ...lateIds];
    const views = await allReach(client, ids, ['succeeded', 'failed'], { timeoutMs: 10_000 });

    expect(views.map((view) => view.status)).toEqual(ids.map(() => 'succeeded'));
    expect(await stack.queueDrained()).toMatchObject({ completed: 15, failed: 0 });
    await expectOnePaymentEach(stack, ids, { status: 'succeeded', failure_reason: null });
    await expectChargedOnceEach(stack.db, ids, { nothingElse: true });
    const finished = await logged(
      successor,
      (output) => finishedIn(output).size >= ids.length,
      'the successor to log its payments',
    );
    expect([...finishedIn(finished)].sort()).toEqual([...ids].sort());
  });
});
