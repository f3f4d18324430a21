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
  FAST_STALL_RECOVERY,
  finishedIn,
  logged,
  PATIENT_API,
} from '../support/fault-kit.js';

/** Issue 4, item 1: a worker SIGKILLed in the middle of payments. */
describe.each(STORE_BACKENDS)('worker killed with SIGKILL mid-payment (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    client = createPurchaseClient((await stack.startApi(PATIENT_API)).url);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('lets a second worker take over every job the dead one held; one succeeded payment each', async () => {
    const held = 8;
    const doomed = await stack.startWorker({
      PAYMENT_DELAY_MS: '1500',
      WORKER_CONCURRENCY: String(held),
      ...FAST_STALL_RECOVERY,
    });
    const userIds = await seedUsers(stack.db, held);
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const ids = await acceptPurchases(
      client,
      userIds.map((userId) => ({ userId, productId })),
    );
    // Every purchase is being charged by the doomed worker before it dies.
    await allReach(client, ids, ['processing'], { timeoutMs: 5_000 });

    expect(await doomed.stop('SIGKILL')).toBe('SIGKILL');

    // Nothing was written or charged (it died within the gateway's latency), and the jobs are
    // still locked to a process that no longer exists.
    expect(await stack.payments()).toEqual([]);
    expect(await stack.db('gateway_charges')).toEqual([]);
    expect(await stack.jobCounts()).toMatchObject({ active: held, completed: 0 });

    const rescuer = await stack.startWorker({ PAYMENT_DELAY_MS: '200', ...FAST_STALL_RECOVERY });
    const views = await allReach(client, ids, ['succeeded', 'failed'], { timeoutMs: 15_000 });

    expect(views.map((view) => view.status)).toEqual(ids.map(() => 'succeeded'));
    expect(await stack.queueDrained()).toMatchObject({ completed: held, failed: 0 });
    await expectOnePaymentEach(stack, ids, { status: 'succeeded', failure_reason: null });
    await expectChargedOnceEach(stack.db, ids, { nothingElse: true });
    // The second worker did the work; the first died before finishing any of it.
    const rescued = await logged(
      rescuer,
      (output) => finishedIn(output).size >= held,
      'the rescuer to log its payments',
    );
    expect([...finishedIn(rescued)].sort()).toEqual([...ids].sort());
    expect(finishedIn(doomed.output()).size).toBe(0);
  });
});
