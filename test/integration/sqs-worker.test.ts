import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPaymentsRepository, type PaymentsRepository } from '../../src/shared/purchase/payments-repository.js';
import { createRedisPurchaseStateStore } from '../../src/shared/redis/purchase-state-store.js';
import type { PurchaseJob } from '../../src/shared/purchase/purchase.js';
import { createSqsPurchaseProducer, sqsRememberSeconds } from '../../src/shared/queue/sqs-purchase-producer.js';
import { createPersistentRedis, type RedisClient } from '../../src/shared/redis/connection.js';
import type { PaymentGateway } from '../../src/worker/payment-gateway.js';
import { createPurchaseProcessor } from '../../src/worker/process-purchase.js';
import { createSqsMessageSettler } from '../../src/worker/sqs/message-settler.js';
import { createSqsPurchaseWorker, type SqsPurchaseWorker } from '../../src/worker/sqs/poller.js';
import {
  createTestDatabase,
  deleteKeys,
  eventually,
  randomSuffix,
  seedUserAndProduct,
  TEST_REDIS_URL,
  type TestDatabase,
} from '../support/services.js';
import { startTestSqs, type TestFifoQueue, type TestSqs } from '../support/sqs.js';

const logger = pino({ level: 'silent' });
const prefix = `test_${randomSuffix()}`;
let sqs: TestSqs;
let database: TestDatabase;
let redis: RedisClient;
let running: SqsPurchaseWorker[] = [];

beforeAll(async () => {
  [sqs, database] = await Promise.all([startTestSqs(), createTestDatabase()]);
  redis = createPersistentRedis({ REDIS_URL: TEST_REDIS_URL, REDIS_COMMAND_TIMEOUT_MS: 500 }, logger, 'test-worker');
});

afterEach(async () => {
  await Promise.all(running.map((worker) => worker.close(2_000)));
  running = [];
});

afterAll(async () => {
  redis?.disconnect();
  await deleteKeys(prefix);
  await database?.drop();
  await sqs?.stop();
});

interface WorkerOptions {
  gateway?: PaymentGateway;
  payments?: PaymentsRepository;
  attempts?: number;
  concurrency?: number;
  visibilityTimeoutSeconds?: number;
}

/** An SQS worker on `queue` with the real step (Postgres, Redis); charges are counted. */
function startWorker(queue: TestFifoQueue, options: WorkerOptions = {}) {
  const charges: string[] = [];
  const inner: PaymentGateway = options.gateway ?? { charge: async () => ({ approved: true }) };
  const processor = createPurchaseProcessor({
    payments: options.payments ?? createPaymentsRepository({ db: database.db }),
    states: createRedisPurchaseStateStore({ redis, prefix }),
    gateway: {
      charge: async (request) => {
        charges.push(request.purchaseId);
        return inner.charge(request);
      },
    },
    logger,
  });
  const worker = createSqsPurchaseWorker({
    sqs: sqs.client,
    queueUrl: queue.url,
    settle: createSqsMessageSettler({
      processor,
      logger,
      attempts: options.attempts ?? 5,
      backoffMs: 20,
      maxBackoffSeconds: 5,
    }),
    logger,
    concurrency: options.concurrency ?? 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30,
  });
  void worker.run();
  running.push(worker);
  return { worker, charges };
}

async function enqueue(queue: TestFifoQueue): Promise<PurchaseJob> {
  const { userId, productId, price } = await seedUserAndProduct(database.db, { price: 700 });
  const job: PurchaseJob = {
    purchaseId: randomUUID(),
    userId,
    productId,
    amount: price,
    idempotencyKey: `user:${userId}:product:${productId}`,
    acceptedAt: new Date().toISOString(),
  };
  const producer = createSqsPurchaseProducer({
    sqs: sqs.client,
    queueUrl: queue.url,
    redis,
    prefix,
    rememberSeconds: sqsRememberSeconds(300),
  });
  await producer.enqueuePurchase(job);
  return job;
}

const rowsFor = (purchaseId: string) => database.db('payments').where({ id: purchaseId });
const emptied = (queue: TestFifoQueue) =>
  eventually(
    async () => {
      const counts = await sqs.counts(queue.url);
      return counts.visible + counts.inFlight + counts.delayed === 0 ? true : undefined;
    },
    { timeoutMs: 10_000, what: `queue ${queue.name} to be empty` },
  );
const transient = () => Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });

describe('the SQS worker process transport (fauxqs, real Postgres and Redis)', () => {
  it('charges a queued purchase once, writes it and deletes the message', async () => {
    const queue = await sqs.createFifoQueue();
    const { charges } = startWorker(queue);
    const job = await enqueue(queue);

    await eventually(async () => ((await rowsFor(job.purchaseId)).length === 1 ? true : undefined));
    await emptied(queue);
    expect(await rowsFor(job.purchaseId)).toMatchObject([{ status: 'succeeded', amount: 700 }]);
    expect(charges).toEqual([job.purchaseId]);
    expect(await sqs.counts(queue.deadLetterUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('retries a transient failure after a backoff, then writes once', async () => {
    const queue = await sqs.createFifoQueue({ visibilityTimeoutSeconds: 30 });
    const real = createPaymentsRepository({ db: database.db });
    let failures = 0;
    startWorker(queue, {
      payments: {
        ...real,
        recordPayment: async (job, outcome) => {
          if (failures < 2) {
            failures++;
            throw transient();
          }
          return real.recordPayment(job, outcome);
        },
      },
    });
    const started = Date.now();
    const job = await enqueue(queue);

    // The retries come after the worker's backoff (1 s each here), not the queue's 30-second timeout.
    await eventually(async () => ((await rowsFor(job.purchaseId)).length === 1 ? true : undefined), {
      timeoutMs: 15_000,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(failures).toBe(2);
    await emptied(queue);
    expect(await rowsFor(job.purchaseId)).toMatchObject([{ status: 'succeeded' }]);
  });

  it('records the purchase as failed on the last receive and deletes the message', async () => {
    const queue = await sqs.createFifoQueue({ maxReceiveCount: 2 });
    const { charges } = startWorker(queue, {
      attempts: 2,
      gateway: {
        charge: async () => {
          throw transient();
        },
      },
    });
    const job = await enqueue(queue);

    await eventually(async () => ((await rowsFor(job.purchaseId)).length === 1 ? true : undefined), {
      timeoutMs: 15_000,
    });
    expect(await rowsFor(job.purchaseId)).toMatchObject([{ status: 'failed', failure_reason: 'retries_exhausted' }]);
    expect(charges).toEqual([job.purchaseId, job.purchaseId]);
    await emptied(queue);
    expect(await sqs.counts(queue.deadLetterUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('records a decline without retrying and drops a malformed message', async () => {
    const queue = await sqs.createFifoQueue();
    const { charges } = startWorker(queue, {
      gateway: { charge: async () => ({ approved: false, reason: 'card_declined' }) },
    });
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '{"purchaseId":42}',
        MessageGroupId: 'g',
        MessageDeduplicationId: 'd',
      }),
    );
    const job = await enqueue(queue);

    await eventually(async () => ((await rowsFor(job.purchaseId)).length === 1 ? true : undefined));
    await emptied(queue);
    expect(await rowsFor(job.purchaseId)).toMatchObject([{ status: 'failed', failure_reason: 'card_declined' }]);
    expect(charges).toEqual([job.purchaseId]);
    expect(await sqs.counts(queue.deadLetterUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('keeps a purchase that outlasts the visibility timeout hidden while it runs', async () => {
    const queue = await sqs.createFifoQueue();
    const { charges } = startWorker(queue, {
      visibilityTimeoutSeconds: 2,
      gateway: { charge: () => new Promise((resolve) => setTimeout(() => resolve({ approved: true }), 4_500)) },
    });
    const job = await enqueue(queue);

    await eventually(async () => ((await rowsFor(job.purchaseId)).length === 1 ? true : undefined), {
      timeoutMs: 15_000,
    });
    await emptied(queue);
    // Without the heartbeat the message would reappear after 2 s and be charged again.
    expect(charges).toEqual([job.purchaseId]);
  }, 30_000);

  it('runs at most `concurrency` purchases at once', async () => {
    const queue = await sqs.createFifoQueue();
    let active = 0;
    let peak = 0;
    startWorker(queue, {
      concurrency: 3,
      gateway: {
        charge: async () => {
          peak = Math.max(peak, ++active);
          await new Promise((resolve) => setTimeout(resolve, 150));
          active--;
          return { approved: true };
        },
      },
    });
    const jobs = await Promise.all(Array.from({ length: 9 }, () => enqueue(queue)));

    await eventually(
      async () => {
        const rows = await database.db('payments').whereIn(
          'id',
          jobs.map((job) => job.purchaseId),
        );
        return rows.length === 9 ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(peak).toBe(3);
  });

  it('hands a purchase still running at the shutdown deadline back to the queue', async () => {
    const queue = await sqs.createFifoQueue();
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const { worker, charges } = startWorker(queue, {
      gateway: {
        charge: async () => {
          await blocked;
          return { approved: true };
        },
      },
    });
    const job = await enqueue(queue);
    await eventually(() => (charges.length === 1 ? true : undefined));

    // The deadline outlasts the 1-second long poll, as SHUTDOWN_TIMEOUT_MS should outlast SQS_WAIT_TIME_SECONDS.
    const closing = Date.now();
    await worker.close(1_500);
    expect(Date.now() - closing).toBeLessThan(2_500);
    // Visible again at once, not after the 30-second visibility timeout.
    expect((await sqs.counts(queue.url)).visible).toBe(1);
    release();

    startWorker(queue);
    await eventually(async () => ((await rowsFor(job.purchaseId)).length === 1 ? true : undefined));
    await emptied(queue);
    expect(await rowsFor(job.purchaseId)).toHaveLength(1);
  });
});
