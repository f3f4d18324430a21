import type { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createResources } from '../../src/shared/lifecycle.js';
import { createPaymentsRepository, type PaymentsRepository } from '../../src/shared/purchase/payments-repository.js';
import type { PurchaseStores } from '../../src/shared/purchase/purchase-stores.js';
import { createQueue } from '../../src/shared/queue/bullmq-store.js';
import { openPurchaseStores } from '../../src/shared/stores.js';
import { closeWorkerWithin, createBullmqPurchaseWorker } from '../../src/worker/bullmq/purchase-worker.js';
import { createSimulatedGateway, type PaymentGateway } from '../../src/worker/payment-gateway.js';
import { createPurchaseProcessor } from '../../src/worker/process-purchase.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { eventually, seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

const logger = pino({ level: 'silent' });

describe.each(STORE_BACKENDS)('the worker on a real BullMQ queue and Postgres (%s backend)', (backend) => {
  let stack: TestStack;
  /** The worker side's stores, opened as the worker's composition root opens them. */
  let workerStores: PurchaseStores;
  const workerResources = createResources(logger);
  let running: Worker | undefined;
  let charges: string[];

  beforeAll(async () => {
    stack = await createTestStack({ backend, env: { JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '20' } });
    workerStores = openPurchaseStores(stack.config, {
      db: stack.database.db,
      logger,
      resources: workerResources,
      role: 'worker',
    });
  });
  afterEach(async () => {
    if (running) await closeWorkerWithin(running, 5_000, logger);
    running = undefined;
  });
  afterAll(async () => {
    await workerResources.close();
    await stack?.close();
  });

  /** Starts an in-process BullMQ worker on the stack's queue; `payments` may inject faults. */
  function startWorker(options: { payments?: PaymentsRepository; declineRate?: number; delayMs?: number } = {}) {
    charges = [];
    const simulated = createSimulatedGateway({
      db: stack.database.db,
      delayMs: options.delayMs ?? 0,
      declineRate: options.declineRate ?? 0,
    });
    const gateway: PaymentGateway = {
      charge: async (request) => {
        charges.push(request.purchaseId);
        return simulated.charge(request);
      },
    };
    const processor = createPurchaseProcessor({
      payments: options.payments ?? createPaymentsRepository({ db: stack.database.db }),
      states: workerStores.states,
      gateway,
      logger,
    });
    running = createBullmqPurchaseWorker({
      store: workerStores.bullmq,
      queueName: stack.config.QUEUE_NAME,
      processor,
      logger,
      concurrency: 10,
      stalledIntervalMs: 30_000,
      lockDurationMs: 30_000,
    });
    void running.run();
    return running;
  }

  async function submit(headers: Record<string, string> = {}) {
    const { userId, productId } = await seedUserAndProduct(stack.database.db, { price: 999 });
    const response = await stack.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      headers,
      payload: { userId, productId },
    });
    return { response, userId, productId };
  }

  const status = async (purchaseId: string) =>
    (await stack.app.inject({ method: 'GET', url: `/payment/purchase/${purchaseId}` })).json();

  const rowsFor = (purchaseId: string) => stack.database.db('payments').where({ id: purchaseId });

  it('charges and writes an accepted purchase once; Prefer: wait returns it finished', async () => {
    startWorker();
    const { response } = await submit({ prefer: 'wait=10' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['preference-applied']).toBe('wait=10');
    const purchase = response.json();
    expect(purchase).toMatchObject({ status: 'succeeded', amount: 999, failureReason: null });
    expect(await rowsFor(purchase.purchaseId)).toHaveLength(1);
    expect(charges).toEqual([purchase.purchaseId]);
  });

  it('writes nothing twice and charges nothing twice when the job is delivered again', async () => {
    startWorker();
    const { response } = await submit();
    const { purchaseId } = response.json();
    const original = await eventually(async () => {
      const view = await status(purchaseId);
      return view.status === 'succeeded' ? view : undefined;
    });
    // A redelivery: the same purchase arrives again as a new job.
    const job = await stack.queue.getJob(purchaseId);
    const queue = createQueue(stack.config.QUEUE_NAME, workerStores.bullmq);
    const again = await queue.add('purchase', job!.data, { jobId: `${purchaseId}-again` });
    await eventually(async () => ((await again.getState()) === 'completed' ? true : undefined));
    await queue.close();
    expect(await rowsFor(purchaseId)).toHaveLength(1);
    expect(charges.filter((id) => id === purchaseId)).toHaveLength(1);
    expect(await status(purchaseId)).toEqual(original);
  });

  it('charges nothing again when BullMQ runs the same job a second time', async () => {
    startWorker();
    const { response } = await submit();
    const { purchaseId } = response.json();
    await eventually(async () => ((await status(purchaseId)).status === 'succeeded' ? true : undefined));
    // An operator retries the completed job: same job id, its second start.
    const job = await stack.queue.getJob(purchaseId);
    await job!.retry('completed');
    await eventually(async () => {
      const again = await stack.queue.getJob(purchaseId);
      return again?.attemptsStarted === 2 && (await again.getState()) === 'completed' ? true : undefined;
    });
    expect(await rowsFor(purchaseId)).toHaveLength(1);
    expect(charges.filter((id) => id === purchaseId)).toHaveLength(1);
  });

  it('records a decline as failed with its reason, without retrying', async () => {
    startWorker({ declineRate: 1 });
    const { response } = await submit();
    const { purchaseId } = response.json();
    const view = await eventually(async () => {
      const current = await status(purchaseId);
      return current.status === 'failed' ? current : undefined;
    });
    expect(view.failureReason).toBe('card_declined');
    expect(await rowsFor(purchaseId)).toMatchObject([{ status: 'failed', failure_reason: 'card_declined' }]);
    expect(charges).toEqual([purchaseId]);
  });

  it('retries a transient write failure with backoff and then writes once', async () => {
    const real = createPaymentsRepository({ db: stack.database.db });
    let failures = 0;
    startWorker({
      payments: {
        ...real,
        recordPayment: async (job, outcome) => {
          if (failures < 2) {
            failures++;
            throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
          }
          return real.recordPayment(job, outcome);
        },
      },
    });
    const { response } = await submit();
    const { purchaseId } = response.json();
    await eventually(async () => ((await status(purchaseId)).status === 'succeeded' ? true : undefined));
    expect(failures).toBe(2);
    // The outcome is visible before BullMQ records the job complete; wait for that too.
    const job = await eventually(async () => {
      const current = await stack.queue.getJob(purchaseId);
      return (await current?.getState()) === 'completed' ? current : undefined;
    });
    // Two failed attempts and the successful third (BullMQ counts every attempt made).
    expect(job?.attemptsMade).toBe(3);
    expect(await rowsFor(purchaseId)).toHaveLength(1);
  });

  it('records the purchase as failed once the retry budget is spent', async () => {
    const real = createPaymentsRepository({ db: stack.database.db });
    startWorker({
      payments: {
        ...real,
        recordPayment: async (job, outcome) => {
          if (outcome.status === 'succeeded') throw Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' });
          return real.recordPayment(job, outcome);
        },
      },
    });
    const { response } = await submit();
    const { purchaseId } = response.json();
    const view = await eventually(async () => {
      const current = await status(purchaseId);
      return current.status === 'failed' ? current : undefined;
    });
    expect(view.failureReason).toBe('retries_exhausted');
    expect(await rowsFor(purchaseId)).toMatchObject([{ status: 'failed', failure_reason: 'retries_exhausted' }]);
    // The outcome is recorded before the step throws; BullMQ fails the job a moment later.
    await eventually(
      async () => ((await (await stack.queue.getJob(purchaseId))?.getState()) === 'failed' ? true : undefined),
      {
        what: 'BullMQ to fail the job',
      },
    );
  });

  it('hands jobs still running at the shutdown deadline back to the queue at once', async () => {
    const slow = startWorker({ delayMs: 4_000 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit()).response.json().purchaseId);
    await eventually(async () => ((await stack.queue.getActiveCount()) === 3 ? true : undefined), {
      what: 'three active jobs',
    });

    const startedClosing = Date.now();
    await closeWorkerWithin(slow, 300, logger);
    running = undefined;
    expect(Date.now() - startedClosing).toBeLessThan(3_000);
    for (const id of ids) {
      const job = await stack.queue.getJob(id);
      expect(await job?.getState()).toBe('waiting');
      expect(job?.attemptsMade).toBe(0);
    }

    startWorker();
    const written = new Map<string, unknown>();
    for (const id of ids) {
      written.set(
        id,
        await eventually(
          async () => {
            const view = await status(id);
            return view.status === 'succeeded' ? view : undefined;
          },
          { what: `purchase ${id}` },
        ),
      );
    }
    // The abandoned runs finish in the background after the fresh worker wrote the payments:
    // wait for them (so they do not outlive the test) and check their late writes changed nothing.
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    for (const id of ids) expect(await status(id)).toEqual(written.get(id));
  });
});
