import { randomUUID } from 'node:crypto';
import { DeleteMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeContainer as closeApi, handler as apiHandler } from '../../src/api/lambda.js';
import { sqsDeduplicationId } from '../../src/shared/queue/sqs-purchase-producer.js';
import { closeContainer as closeWorker, handler as workerHandler } from '../../src/worker/lambda.js';
import { httpApiEvent, lambdaContext, sqsRecord } from '../support/lambda-events.js';
import { startLambdaEnvironment, type LambdaEnvironment } from '../support/lambda-environment.js';
import { seedUserAndProduct, type TestDatabase } from '../support/services.js';
import type { TestFifoQueue, TestSqs } from '../support/sqs.js';

/** The Lambda entries, invoked in-process with real-shaped events, on real Postgres and Redis. */
let sqs: TestSqs;
let queue: TestFifoQueue;
let database: TestDatabase;
const JOB_ATTEMPTS = 5;
let environment: LambdaEnvironment;

beforeAll(async () => {
  environment = await startLambdaEnvironment({ maxReceiveCount: JOB_ATTEMPTS });
  ({ sqs, queue, database } = environment);
});

afterAll(async () => {
  await closeApi();
  await closeWorker();
  await environment?.close();
});

/** An API Gateway request to the API Lambda, with the test account's key unless `options` sets one. */
const invokeApi = (method: string, path: string, options: Parameters<typeof httpApiEvent>[2] = {}) =>
  apiHandler(
    httpApiEvent(method, path, { apiKey: environment.database.account.apiKey, ...options }),
    lambdaContext('payonce-test-api'),
  );
const invokeWorker = (records: SQSEvent['Records']) =>
  workerHandler({ Records: records }, lambdaContext('payonce-test-worker', 60_000));

async function deleteMessages(messages: Message[]): Promise<void> {
  for (const message of messages) {
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: message.ReceiptHandle }));
  }
}

/** Receives every message on the queue (hidden for a minute, as Lambda's poller would hold them). */
async function receiveAll(expected: number): Promise<Message[]> {
  const messages: Message[] = [];
  for (let polls = 0; messages.length < expected && polls < 20; polls++) {
    messages.push(...(await sqs.receive(queue.url, { visibilitySeconds: 60 })));
  }
  expect(messages).toHaveLength(expected);
  return messages;
}

describe('the API Lambda (API Gateway HTTP API, payload 2.0)', () => {
  it('accepts a purchase, answers a duplicate with 204, serves its status and reports readiness', async () => {
    const { userId, productId, price } = await seedUserAndProduct(database.db, { price: 4200 });

    const accepted = await invokeApi('POST', '/payment/purchase', {
      body: { userId, productId },
      headers: { 'idempotency-key': `order-${randomUUID()}` },
    });
    expect(accepted.statusCode).toBe(202);
    const { purchaseId, status, statusUrl } = JSON.parse(accepted.body);
    expect(status).toBe('queued');
    expect(accepted.headers.location).toBe(statusUrl);

    const duplicate = await invokeApi('POST', '/payment/purchase', { body: { userId, productId } });
    const again = await invokeApi('POST', '/payment/purchase', { body: { userId, productId } });
    expect([duplicate.statusCode, again.statusCode]).toEqual([202, 204]);
    expect(again.headers.location).toBe(`/payment/purchase/${JSON.parse(duplicate.body).purchaseId}`);

    const view = await invokeApi('GET', `/payment/purchase/${purchaseId}`);
    expect(view.statusCode).toBe(200);
    expect(JSON.parse(view.body)).toMatchObject({ purchaseId, userId, productId, status: 'queued', amount: price });

    const ready = await invokeApi('GET', '/health/ready');
    expect(JSON.parse(ready.body)).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', queue: 'ok' } });
    expect(ready.statusCode).toBe(200);

    const invalid = await invokeApi('POST', '/payment/purchase', { body: { userId: -1, productId } });
    expect(invalid.statusCode).toBe(400);
    expect(JSON.parse(invalid.body)).toMatchObject({ code: 'VALIDATION_FAILED' });

    // Two accepted purchases, two messages; the duplicate sent nothing.
    const messages = await receiveAll(2);
    expect(messages.map((message) => JSON.parse(message.Body!).purchaseId).sort()).toEqual(
      [purchaseId, JSON.parse(duplicate.body).purchaseId].sort(),
    );
    await deleteMessages(messages);
  });
});

describe('the events stream on the API Lambda', () => {
  it('arrives whole, as API Gateway buffers it: here a finished purchase, its one event', async () => {
    const { userId, productId } = await seedUserAndProduct(database.db, { price: 700 });
    // Written as the API and the worker would have (nothing goes through the queue, which the
    // worker tests below count).
    const purchaseId = randomUUID();
    const row = { id: purchaseId, user_id: userId, product_id: productId, amount: 700 };
    const accepted = { ...row, idempotency_key: `user:${userId}:key:${purchaseId}`, accepted_at: new Date() };
    await database.db('purchases').insert({ ...accepted, account_id: database.account.id });
    await database.db('payments').insert({ ...accepted, status: 'succeeded' });

    const stream = await invokeApi('GET', `/payment/purchase/${purchaseId}/events`);
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = [...String(stream.body).matchAll(/^data: (.*)$/gm)].map((match) => JSON.parse(match[1]!));
    expect(events).toMatchObject([{ purchaseId, status: 'succeeded', amount: 700 }]);
  });
});

describe('the worker Lambda (SQS event source mapping, ReportBatchItemFailures)', () => {
  /** Purchases accepted through the API Lambda, as their SQS messages. */
  async function acceptPurchases(count: number): Promise<{ purchaseId: string; message: Message }[]> {
    const purchaseIds: string[] = [];
    for (let index = 0; index < count; index++) {
      const { userId, productId } = await seedUserAndProduct(database.db, { price: 999 });
      const response = await invokeApi('POST', '/payment/purchase', { body: { userId, productId } });
      expect(response.statusCode).toBe(202);
      purchaseIds.push(JSON.parse(response.body).purchaseId);
    }
    const messages = await receiveAll(count);
    const byPurchase = new Map(messages.map((message) => [JSON.parse(message.Body!).purchaseId as string, message]));
    return purchaseIds.map((purchaseId) => ({ purchaseId, message: byPurchase.get(purchaseId)! }));
  }

  const rowsOf = (purchaseIds: string[]) => database.db('payments').whereIn('id', purchaseIds).orderBy('id');

  it('reports a failing record and every record after it, and a redelivered batch writes nothing twice', async () => {
    const [first, second, third, fourth] = await acceptPurchases(4);
    // A purchase that fails at the database on every attempt (its amount overflows the column):
    // a transient failure as far as the worker can tell.
    const { userId, productId } = await seedUserAndProduct(database.db);
    const failing = {
      purchaseId: randomUUID(),
      userId,
      productId,
      amount: 3_000_000_000,
      idempotencyKey: `user:${userId}:product:${productId}`,
      acceptedAt: new Date().toISOString(),
    };
    // Accepted as the API accepts every purchase (its amount as the column holds it); only the job is broken.
    await database.db('purchases').insert({
      id: failing.purchaseId,
      account_id: database.account.id,
      user_id: userId,
      product_id: productId,
      amount: 100,
      idempotency_key: failing.idempotencyKey,
      accepted_at: failing.acceptedAt,
    });
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: JSON.stringify(failing),
        MessageGroupId: failing.purchaseId,
        MessageDeduplicationId: sqsDeduplicationId(failing.idempotencyKey),
      }),
    );
    const [failingMessage] = await receiveAll(1);
    const batch = [first!.message, second!.message, failingMessage!, third!.message, fourth!.message];
    const records = batch.map((message) => sqsRecord(message, queue.arn));

    const firstRun = await invokeWorker(records);

    expect(firstRun).toEqual({
      batchItemFailures: records.slice(2).map((record) => ({ itemIdentifier: record.messageId })),
    });
    const written = await rowsOf([first!.purchaseId, second!.purchaseId, third!.purchaseId, fourth!.purchaseId]);
    expect(written.map((row) => row.id).sort()).toEqual([first!.purchaseId, second!.purchaseId].sort());
    // The two records after the failure were never attempted and are visible again at once;
    // the failed one waits out its visibility timeout.
    expect((await sqs.counts(queue.url)).visible).toBe(2);

    // Lambda delivers the whole batch again; the failing record is now on its last receive.
    const redelivered = batch.map((message, index) => sqsRecord(message, queue.arn, index === 2 ? JOB_ATTEMPTS : 2));
    expect(await invokeWorker(redelivered)).toEqual({ batchItemFailures: [] });

    const ids = [first!.purchaseId, second!.purchaseId, third!.purchaseId, fourth!.purchaseId];
    const rows = await rowsOf(ids);
    expect(rows).toHaveLength(4);
    expect(rows.every((row) => row.status === 'succeeded')).toBe(true);
    // The failing purchase could not be written, so its failure is visible from Redis.
    const failed = await invokeApi('GET', `/payment/purchase/${failing.purchaseId}`);
    expect(JSON.parse(failed.body)).toMatchObject({ status: 'failed', failureReason: 'retries_exhausted' });

    // Once more, with a malformed record in the middle: it is dropped, nothing is reported, and
    // every purchase still has exactly the row written the first time.
    const malformed = sqsRecord({ ...first!.message, MessageId: randomUUID(), Body: '{"purchaseId":' }, queue.arn);
    const withMalformed = [...redelivered.slice(0, 2), malformed, ...redelivered.slice(3)];
    expect(await invokeWorker(withMalformed)).toEqual({ batchItemFailures: [] });
    expect(await rowsOf(ids)).toEqual(rows);
  });
});
