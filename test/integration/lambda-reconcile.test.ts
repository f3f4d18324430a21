import { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import type { ScheduledEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeContainer as closeApi, handler as apiHandler } from '../../src/api/lambda.js';
import { closeContainer as closeWorker, handler as workerHandler } from '../../src/worker/lambda.js';
import { expectChargedOnceEach } from '../support/fault-kit.js';
import { httpApiEvent, lambdaContext, sqsRecord } from '../support/lambda-events.js';
import { startLambdaEnvironment, type LambdaEnvironment } from '../support/lambda-environment.js';
import { seedUserAndProduct } from '../support/services.js';

/** What EventBridge sends on a schedule (infra/reconcile.tf). */
const scheduledEvent = {
  version: '0',
  id: 'e1',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '000000000000',
  time: new Date().toISOString(),
  region: 'us-east-1',
  resources: ['arn:aws:events:us-east-1:000000000000:rule/payonce-test-reconcile'],
  detail: {},
} satisfies ScheduledEvent;

/**
 * Issue 9: on Lambda the reconciler runs when EventBridge invokes the worker function. One
 * receive of five seconds is the whole retry schedule here, but a lost message is sent again
 * only past SQS's 5-minute deduplication window (a send within it would be dropped as a
 * duplicate), so the test moves this process's clock (the emulator runs in it) six minutes on.
 */
describe('the worker Lambda on its reconcile schedule', () => {
  let environment: LambdaEnvironment;

  beforeAll(async () => {
    environment = await startLambdaEnvironment({
      maxReceiveCount: 1,
      visibilityTimeoutSeconds: 5,
      env: {
        JOB_BACKOFF_MS: '1',
        SQS_MAX_BACKOFF_SECONDS: '0',
        SQS_VISIBILITY_TIMEOUT_SECONDS: '5',
        RECONCILE_AFTER_SECONDS: '1',
      },
    });
  });

  afterAll(async () => {
    await closeApi();
    await closeWorker();
    await environment?.close();
  });

  it('sends a purchase whose message was lost again, and the next batch charges it once', async () => {
    const { sqs, queue, database } = environment;
    const { userId, productId } = await seedUserAndProduct(database.db, { price: 650 });
    const accepted = await apiHandler(
      httpApiEvent('POST', '/payment/purchase', { body: { userId, productId }, apiKey: database.account.apiKey }),
      lambdaContext('payonce-test-api'),
    );
    expect(accepted.statusCode).toBe(202);
    const { purchaseId } = JSON.parse(accepted.body as string) as { purchaseId: string };

    // The message is lost (deleted unprocessed, as a purge or a broken redrive would).
    const [lost] = await sqs.receive(queue.url, { visibilitySeconds: 60 });
    expect(JSON.parse(lost!.Body!)).toMatchObject({ purchaseId });
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: lost!.ReceiptHandle }));

    // Before the retry schedule has passed, the reconciler leaves it alone.
    const early = await workerHandler(scheduledEvent, lambdaContext('payonce-test-worker', 60_000));
    expect(early.requeued).toEqual([]);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 6 * 60_000 });
    try {
      const report = await workerHandler(scheduledEvent, lambdaContext('payonce-test-worker', 60_000));
      expect(report.requeued).toEqual([purchaseId]);
    } finally {
      vi.useRealTimers();
    }

    const [again] = await sqs.receive(queue.url, { visibilitySeconds: 60, waitSeconds: 2 });
    expect(JSON.parse(again!.Body!)).toMatchObject({ purchaseId });
    const batch = await workerHandler(
      { Records: [sqsRecord(again!, queue.arn)] },
      lambdaContext('payonce-test-worker', 60_000),
    );
    expect(batch).toEqual({ batchItemFailures: [] });
    expect(await database.db('payments').where({ id: purchaseId }).select('status')).toEqual([{ status: 'succeeded' }]);
    await expectChargedOnceEach(database.db, [purchaseId], { nothingElse: true });
  }, 30_000);
});
