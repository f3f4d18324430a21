import { randomUUID } from 'node:crypto';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Purchase, PurchaseJob } from '../../src/shared/purchase/purchase.js';
import { PermanentPurchaseError } from '../../src/worker/process-purchase.js';
import { createSqsBatchHandler } from '../../src/worker/sqs/batch-handler.js';
import { createSqsMessageSettler, receiveCountOf } from '../../src/worker/sqs/message-settler.js';

const logger = pino({ level: 'silent' });

function jobFor(purchaseId = randomUUID()): PurchaseJob {
  return {
    purchaseId,
    userId: 1,
    productId: 2,
    amount: 500,
    idempotencyKey: `user:1:key:${purchaseId}`,
    acceptedAt: new Date().toISOString(),
  };
}

/** A processor whose step does what `behaviour` says for each purchase id. */
function fakeProcessor(behaviour: (job: PurchaseJob) => Promise<void> | void = () => {}) {
  const processed: string[] = [];
  const exhausted: { purchaseId: string; cause: unknown }[] = [];
  return {
    processed,
    exhausted,
    processPurchase: async (job: PurchaseJob) => {
      processed.push(job.purchaseId);
      await behaviour(job);
      return { purchaseId: job.purchaseId, status: 'succeeded' } as Purchase;
    },
    recordRetriesExhausted: async (job: PurchaseJob, cause: unknown) => {
      exhausted.push({ purchaseId: job.purchaseId, cause });
      return null;
    },
  };
}

const settlerWith = (processor: ReturnType<typeof fakeProcessor>, attempts = 5) =>
  createSqsMessageSettler({ processor, logger, attempts, backoffMs: 1000, maxBackoffSeconds: 10 });

const message = (job: PurchaseJob | string, receiveCount = 1) => ({
  messageId: randomUUID(),
  body: typeof job === 'string' ? job : JSON.stringify(job),
  receiveCount,
});

describe('settling one SQS message', () => {
  it('settles a processed purchase', async () => {
    const processor = fakeProcessor();
    const job = jobFor();
    expect(await settlerWith(processor)(message(job))).toEqual({ settled: true, result: 'processed' });
    expect(processor.processed).toEqual([job.purchaseId]);
  });

  it('settles a permanent failure without retrying it', async () => {
    const processor = fakeProcessor(() => {
      throw new PermanentPurchaseError('user or product was deleted before payment');
    });
    expect(await settlerWith(processor)(message(jobFor(), 1))).toEqual({ settled: true, result: 'permanent_failure' });
    expect(processor.exhausted).toEqual([]);
  });

  it('leaves a transient failure for a retry whose delay doubles per receive, up to the cap', async () => {
    const failure = new Error('Connection terminated unexpectedly');
    const processor = fakeProcessor(() => {
      throw failure;
    });
    const settle = settlerWith(processor, 10);
    const delays = [];
    for (const receiveCount of [1, 2, 3, 4, 5]) {
      const outcome = await settle(message(jobFor(), receiveCount));
      expect(outcome).toMatchObject({ settled: false, error: failure });
      delays.push(outcome.settled ? null : outcome.retryDelaySeconds);
    }
    expect(delays).toEqual([1, 2, 4, 8, 10]);
    expect(processor.exhausted).toEqual([]);
  });

  it('records the failure on the last receive and settles the message', async () => {
    const failure = new Error('timeout');
    const processor = fakeProcessor(() => {
      throw failure;
    });
    const job = jobFor();
    expect(await settlerWith(processor, 3)(message(job, 3))).toEqual({ settled: true, result: 'retries_exhausted' });
    expect(processor.exhausted).toEqual([{ purchaseId: job.purchaseId, cause: failure }]);
  });

  it('drops a malformed message without running the step', async () => {
    const processor = fakeProcessor();
    const settle = settlerWith(processor);
    for (const body of ['not json', '{"purchaseId":"nope"}', JSON.stringify({ ...jobFor(), amount: -1 })]) {
      expect(await settle(message(body))).toEqual({ settled: true, result: 'malformed' });
    }
    expect(processor.processed).toEqual([]);
  });

  it('reads the receive count from the message attributes', () => {
    expect(receiveCountOf({ ApproximateReceiveCount: '4' })).toBe(4);
    expect(receiveCountOf({})).toBe(1);
    expect(receiveCountOf(undefined)).toBe(1);
    expect(receiveCountOf({ ApproximateReceiveCount: 'x' })).toBe(1);
  });
});

function record(body: string, receiveCount = 1): SQSRecord {
  const messageId = randomUUID();
  return {
    messageId,
    receiptHandle: `handle-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(Date.now()),
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
      SequenceNumber: '18849496460467696128',
      MessageGroupId: randomUUID(),
      MessageDeduplicationId: 'abc',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:payonce-prod-purchases.fifo',
    awsRegion: 'eu-west-1',
  };
}

describe('the Lambda batch handler', () => {
  it('reports the first transient failure and every record after it, unattempted, in order', async () => {
    const jobs = [jobFor(), jobFor(), jobFor(), jobFor()];
    const processor = fakeProcessor((job) => {
      if (job.purchaseId === jobs[1]!.purchaseId) throw new Error('ECONNRESET');
    });
    const released: string[][] = [];
    const handle = createSqsBatchHandler({
      settle: settlerWith(processor),
      logger,
      releaseUnattempted: async (records) => {
        released.push(records.map((r) => r.messageId));
      },
    });
    const event: SQSEvent = { Records: jobs.map((job) => record(JSON.stringify(job))) };

    const response = await handle(event, () => 60_000);

    const ids = event.Records.map((r) => r.messageId);
    expect(response).toEqual({ batchItemFailures: ids.slice(1).map((itemIdentifier) => ({ itemIdentifier })) });
    expect(processor.processed).toEqual([jobs[0]!.purchaseId, jobs[1]!.purchaseId]);
    expect(released).toEqual([ids.slice(2)]);
  });

  it('reports nothing when every record settles, malformed and permanently failed ones included', async () => {
    const declined = jobFor();
    const processor = fakeProcessor((job) => {
      if (job.purchaseId === declined.purchaseId) throw new PermanentPurchaseError('gone');
    });
    const handle = createSqsBatchHandler({ settle: settlerWith(processor), logger });
    const event: SQSEvent = {
      Records: [
        record(JSON.stringify(jobFor())),
        record('{broken'),
        record(JSON.stringify(declined)),
        record(JSON.stringify(jobFor())),
      ],
    };
    expect(await handle(event, () => 60_000)).toEqual({ batchItemFailures: [] });
    expect(processor.processed).toHaveLength(3);
  });

  it('counts a record still running near the invocation deadline as failed', async () => {
    const processor = fakeProcessor(() => new Promise((resolve) => setTimeout(resolve, 1_000)));
    const handle = createSqsBatchHandler({ settle: settlerWith(processor), logger, reserveMs: 5_000 });
    const event: SQSEvent = { Records: [record(JSON.stringify(jobFor())), record(JSON.stringify(jobFor()))] };
    const started = Date.now();
    const response = await handle(event, () => 5_100);
    expect(Date.now() - started).toBeLessThan(900);
    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(
      event.Records.map((r) => r.messageId),
    );
  });
});
