import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Message } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/shared/config.js';
import type { PurchaseJob } from '../../src/shared/purchase/purchase.js';
import { composeWorker, type WorkerRoot } from '../../src/worker/composition-root.js';
import type { SqsBatchHandler } from '../../src/worker/sqs/batch-handler.js';
import { backendEnv } from '../support/backends.js';
import { expectChargedOnceEach } from '../support/fault-kit.js';
import { lambdaContext, sqsRecord } from '../support/lambda-events.js';
import type { PaymentRow } from '../support/process-stack.js';
import {
  createTestDatabase,
  deleteKeys,
  eventually,
  seedUserAndProduct,
  TEST_REDIS_URL,
  testConfig,
  type TestDatabase,
} from '../support/services.js';

/** What the batch handler keeps back at the end of an invocation (its default). */
const RESERVE_MS = 5_000;
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:payonce-test-purchases.fifo';

/** A worker Lambda container: its composition root, its batch handler, and what it logged. */
interface Container {
  root: WorkerRoot;
  handleBatch: SqsBatchHandler;
  logged(msg: string, purchaseId: string): boolean;
}

/**
 * A Lambda invocation that runs out of time on a purchase counts the record as failed and
 * answers, but its step goes on running in the container. SQS hands the record to another
 * container, which runs the same purchase at the same time. Each container is a composition
 * root of its own (its own pools, its own gateway client), as two Lambda containers are; only
 * the gateway's own ledger can tell them that the purchase was already charged. A Redis-backend
 * behaviour: SQS and Lambda need STORE_BACKEND=redis.
 */
describe('a worker Lambda record that timed out while its charge goes on (Redis backend only)', () => {
  let database: TestDatabase;
  let config: Config;
  const containers: Container[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    config = testConfig({
      DATABASE_URL: database.url,
      ...backendEnv('redis', TEST_REDIS_URL),
      PAYMENT_DELAY_MS: '1500',
      JOB_ATTEMPTS: '5',
    });
  });

  afterAll(async () => {
    for (const container of containers) await container.root.close();
    await database?.drop();
    if (config) await deleteKeys(config.REDIS_KEY_PREFIX);
  });

  async function startContainer(): Promise<Container> {
    const lines: Array<{ msg?: string; purchaseId?: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[0]);
        done();
      },
    });
    const root = composeWorker(config, { logger: pino({ level: 'info' }, sink) });
    const container: Container = {
      root,
      handleBatch: await root.createSqsBatchHandler(),
      logged: (msg, purchaseId) => lines.some((line) => line.msg === msg && line.purchaseId === purchaseId),
    };
    containers.push(container);
    return container;
  }

  it('is charged once although both containers ran it to the end', async () => {
    const { userId, productId } = await seedUserAndProduct(database.db, { price: 1250 });
    const job: PurchaseJob = {
      purchaseId: randomUUID(),
      userId,
      productId,
      amount: 1250,
      idempotencyKey: `user:${userId}:product:${productId}`,
      acceptedAt: new Date().toISOString(),
    };
    const message: Message = {
      MessageId: randomUUID(),
      ReceiptHandle: randomUUID(),
      Body: JSON.stringify(job),
      MD5OfBody: '',
      Attributes: { MessageGroupId: job.purchaseId },
    };
    const [first, second] = [await startContainer(), await startContainer()];

    // 300 ms left past the reserve: the record times out within the gateway's 1.5 s latency.
    const timedOut = await first.handleBatch(
      { Records: [sqsRecord(message, QUEUE_ARN, 1)] },
      lambdaContext('payonce-test-worker', RESERVE_MS + 300).getRemainingTimeInMillis,
    );
    expect(timedOut).toEqual({ batchItemFailures: [{ itemIdentifier: message.MessageId }] });
    const payments = () => database.db<PaymentRow>('payments').where({ id: job.purchaseId });
    expect(await payments()).toEqual([]);
    expect(await database.db('gateway_charges')).toEqual([]);

    // Redelivered to another container while the first one's charge is still in flight.
    const redelivered = await second.handleBatch(
      { Records: [sqsRecord(message, QUEUE_ARN, 2)] },
      lambdaContext('payonce-test-worker', 60_000).getRemainingTimeInMillis,
    );
    expect(redelivered).toEqual({ batchItemFailures: [] });
    await eventually(() => (first.logged('purchase finished', job.purchaseId) ? true : undefined), {
      what: 'the timed-out step to finish in the first container',
    });

    // Both charged and wrote: the second found no payment yet, so only the gateway stood
    // between the purchase and a second charge.
    expect(second.logged('purchase already recorded; not charging again', job.purchaseId)).toBe(false);
    expect(second.logged('purchase finished', job.purchaseId)).toBe(true);
    expect(await payments()).toMatchObject([{ status: 'succeeded', amount: 1250 }]);
    await expectChargedOnceEach(database.db, [job.purchaseId], { nothingElse: true });
  });
});
