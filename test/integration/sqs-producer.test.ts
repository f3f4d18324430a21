import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PurchaseJob } from '../../src/shared/purchase/purchase.js';
import {
  createSqsPurchaseProducer,
  sqsDeduplicationId,
  sqsRememberSeconds,
} from '../../src/shared/queue/sqs-purchase-producer.js';
import type { RedisClient } from '../../src/shared/redis/connection.js';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis-cluster.js';
import { deleteKeys, randomSuffix, TEST_REDIS_URL } from '../support/services.js';
import { startTestSqs, type TestFifoQueue, type TestSqs } from '../support/sqs.js';

let sqs: TestSqs;
/** Where the producer remembers its jobs: the test Redis, then a Redis Cluster (see the describe). */
let redis: RedisClient;
const prefix = `test_${randomSuffix()}`;

beforeAll(async () => {
  sqs = await startTestSqs();
});

afterAll(async () => {
  await deleteKeys(prefix);
  await sqs?.stop();
});

function jobFor(idempotencyKey: string): PurchaseJob {
  return {
    purchaseId: randomUUID(),
    userId: 7,
    productId: 3,
    amount: 1250,
    idempotencyKey,
    acceptedAt: new Date().toISOString(),
  };
}

function producerFor(queue: TestFifoQueue, client: SQSClient = sqs.client) {
  return createSqsPurchaseProducer({
    sqs: client,
    queueUrl: queue.url,
    redis,
    prefix,
    rememberSeconds: sqsRememberSeconds(300),
  });
}

/** Every message in the queue (hidden again for a minute so nothing is received twice). */
async function drain(queue: TestFifoQueue) {
  const messages = [];
  for (;;) {
    const batch = await sqs.receive(queue.url, { visibilitySeconds: 60 });
    if (batch.length === 0) return messages;
    messages.push(...batch);
  }
}

/** A client whose SendMessage fails as a network fault would: before or after SQS got it. */
function faultyClient(fault: 'before-send' | 'reply-lost'): SQSClient {
  return {
    send: async (command: SendMessageCommand, options?: unknown) => {
      if (fault === 'before-send') throw Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' });
      await sqs.client.send(command, options as never);
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    },
  } as unknown as SQSClient;
}

describe.each([
  { on: 'a single Redis', cluster: false },
  { on: 'a Redis Cluster', cluster: true },
])('the SQS purchase producer on a FIFO queue (fauxqs), remembering jobs on $on', ({ cluster }) => {
  let redisCluster: RunningRedisCluster | undefined;

  beforeAll(async () => {
    if (cluster) redisCluster = await startRedisCluster();
    redis = redisCluster?.connect() ?? new Redis(TEST_REDIS_URL);
  });

  afterAll(async () => {
    redis?.disconnect();
    await redisCluster?.stop();
  });

  it('sends the job with the purchase as message group and a hash of the key as deduplication id', async () => {
    const queue = await sqs.createFifoQueue();
    const job = jobFor(`user:7:key:order-${randomSuffix()}`);

    expect(await producerFor(queue).enqueuePurchase(job)).toEqual({ queuedPurchaseId: job.purchaseId });

    const [message, ...others] = await drain(queue);
    expect(others).toEqual([]);
    expect(JSON.parse(message!.Body!)).toEqual(job);
    expect(message!.Attributes).toMatchObject({
      MessageGroupId: job.purchaseId,
      MessageDeduplicationId: sqsDeduplicationId(job.idempotencyKey),
    });
    expect(sqsDeduplicationId(job.idempotencyKey)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('folds a second send under the same key into the first and reports the first purchase', async () => {
    const queue = await sqs.createFifoQueue();
    const producer = producerFor(queue);
    const key = `user:7:product:${randomSuffix()}`;
    const first = jobFor(key);
    const second = jobFor(key);

    expect(await producer.enqueuePurchase(first)).toEqual({ queuedPurchaseId: first.purchaseId });
    expect(await producer.enqueuePurchase(second)).toEqual({ queuedPurchaseId: first.purchaseId });

    const messages = await drain(queue);
    expect(messages.map((message) => JSON.parse(message.Body!))).toEqual([first]);
  });

  it.runIf(!cluster)('relies on SQS answering a folded send with the first message id, as AWS does', async () => {
    const queue = await sqs.createFifoQueue();
    const send = (body: string) =>
      sqs.client.send(
        new SendMessageCommand({
          QueueUrl: queue.url,
          MessageBody: body,
          MessageGroupId: randomUUID(),
          MessageDeduplicationId: 'same-id',
        }),
      );
    const first = await send('first');
    const second = await send('second');
    expect(second.MessageId).toBe(first.MessageId);
    expect((await drain(queue)).map((message) => message.Body)).toEqual(['first']);
  });

  it('reports the first purchase when the reply to its send was lost after SQS took it', async () => {
    const queue = await sqs.createFifoQueue();
    const key = `user:7:key:lost-${randomSuffix()}`;
    const first = jobFor(key);
    const retry = jobFor(key);

    await expect(producerFor(queue, faultyClient('reply-lost')).enqueuePurchase(first)).rejects.toThrow(
      'socket hang up',
    );
    // The API released the claim and answered 503; the client's retry is a new purchase.
    expect(await producerFor(queue).enqueuePurchase(retry)).toEqual({ queuedPurchaseId: first.purchaseId });

    const messages = await drain(queue);
    expect(messages.map((message) => JSON.parse(message.Body!))).toEqual([first]);
  });

  it('queues the first purchase after all when its send never reached SQS, and reports it', async () => {
    const queue = await sqs.createFifoQueue();
    const key = `user:7:key:never-${randomSuffix()}`;
    const first = jobFor(key);
    const retry = jobFor(key);

    await expect(producerFor(queue, faultyClient('before-send')).enqueuePurchase(first)).rejects.toThrow('ECONNRESET');
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(await producerFor(queue).enqueuePurchase(retry)).toEqual({ queuedPurchaseId: first.purchaseId });

    const messages = await drain(queue);
    expect(messages.map((message) => JSON.parse(message.Body!))).toEqual([first]);
  });

  it('keeps different keys apart', async () => {
    const queue = await sqs.createFifoQueue();
    const producer = producerFor(queue);
    const one = jobFor(`user:7:product:${randomSuffix()}`);
    const two = jobFor(`user:8:product:${randomSuffix()}`);

    expect(await producer.enqueuePurchase(one)).toEqual({ queuedPurchaseId: one.purchaseId });
    expect(await producer.enqueuePurchase(two)).toEqual({ queuedPurchaseId: two.purchaseId });

    const bodies = (await drain(queue)).map((message) => JSON.parse(message.Body!));
    expect(bodies).toHaveLength(2);
    expect(bodies).toEqual(expect.arrayContaining([one, two]));
  });

  it('remembers a key for the idempotency TTL, and never for less than the SQS window plus a margin', async () => {
    expect(sqsRememberSeconds(60)).toBe(360);
    expect(sqsRememberSeconds(300)).toBe(360);
    expect(sqsRememberSeconds(3600)).toBe(3600);

    const queue = await sqs.createFifoQueue();
    const job = jobFor(`user:7:key:ttl-${randomSuffix()}`);
    await producerFor(queue).enqueuePurchase(job);
    const ttl = await redis.ttl(`${prefix}:sqs-dedup:${sqsDeduplicationId(job.idempotencyKey)}`);
    expect(ttl).toBeGreaterThan(350);
    expect(ttl).toBeLessThanOrEqual(360);
  });

  it('answers the readiness ping, and fails it for a queue that does not exist', async () => {
    const queue = await sqs.createFifoQueue();
    await expect(producerFor(queue).ping()).resolves.toBeUndefined();
    const missing = { ...queue, url: queue.url.replace(queue.name, `missing-${randomSuffix()}.fifo`) };
    await expect(producerFor(missing).ping()).rejects.toThrow();
  });
});
