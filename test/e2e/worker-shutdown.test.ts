import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, seedProducts, seedUsers } from '../support/services.js';
import {
  createPurchaseClient,
  purchaseIdIn,
  type PurchaseClient,
  type PurchaseView,
} from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

describe.each(STORE_BACKENDS)('worker shutdown (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    client = createPurchaseClient((await stack.startApi()).url);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('finishes in-flight purchases on SIGTERM, exits 0, and leaves queued ones to the next worker', async () => {
    const worker = await stack.startWorker({ PAYMENT_DELAY_MS: '2500', WORKER_CONCURRENCY: '2' });
    const userIds = await seedUsers(stack.db, 5);
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const purchaseIds: string[] = [];
    for (const userId of userIds) {
      const result = await client.purchase({ userId, productId });
      expect(result.status).toBe(202);
      purchaseIds.push(purchaseIdIn(result.headers.get('location')));
    }
    const inFlight = await eventually(
      async () => {
        const views = await Promise.all(
          purchaseIds.map(async (id) => (await client.getPurchase(id)).body as unknown as PurchaseView),
        );
        const processing = views.filter((view) => view.status === 'processing').map((view) => view.purchaseId);
        return processing.length === 2 ? processing : undefined;
      },
      { timeoutMs: 10_000, what: 'two purchases to be in flight' },
    );

    const probe = (path: string) =>
      fetch(`${worker.url!}${path}`).then(async (response) => ({
        status: response.status,
        body: await response.json(),
      }));
    expect((await probe('/health/ready')).status).toBe(200);

    const stopped = worker.stop('SIGTERM', 15_000);
    // Its HTTP endpoint stays up while the jobs drain, and says it is going.
    const draining = await eventually(
      async () => {
        const ready = await probe('/health/ready');
        return ready.status === 503 ? ready : undefined;
      },
      { timeoutMs: 2_000, what: 'readiness to turn 503 at SIGTERM' },
    );
    expect(draining.body).toMatchObject({ status: 'unavailable', checks: { process: 'shutting_down' } });
    expect((await probe('/health/live')).status).toBe(200);
    const exitCode = await stopped;

    expect(exitCode, worker.output()).toBe(0);
    const drained = await stack.payments();
    expect(drained.map((row) => row.id).sort()).toEqual([...inFlight].sort());
    for (const row of drained) expect(row.status).toBe('succeeded');
    for (const id of purchaseIds.filter((id) => !inFlight.includes(id))) {
      expect((await client.getPurchase(id)).body).toMatchObject({ status: 'queued' });
    }

    await stack.startWorker({ PAYMENT_DELAY_MS: '0' });
    await stack.queueDrained();
    for (const id of purchaseIds) {
      expect(await client.purchaseReaches(id, ['succeeded', 'failed'])).toMatchObject({ status: 'succeeded' });
    }
    const rows = await stack.payments();
    expect(rows.map((row) => row.id).sort()).toEqual([...purchaseIds].sort());
    expect(rows.every((row) => row.status === 'succeeded')).toBe(true);
  });
});
