import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { RedisClient } from '../redis/connection.js';
import { PurchaseJobSchema, type PurchaseJob } from '../purchase/purchase.js';
import { redisKeys } from '../redis/keys.js';
import { payonceScripts } from '../redis/scripts.js';
import { TimeoutError, withTimeout } from '../timeout.js';
import type { EnqueueResult, PurchaseProducer } from './purchase-producer.js';
import { SQS_DEDUPLICATION_WINDOW_SECONDS, sqsDeduplicationId } from './sqs-deduplication.js';

export { SQS_DEDUPLICATION_WINDOW_SECONDS, sqsDeduplicationId };

/**
 * How much longer than SQS's window the producer remembers the job it sent under a key. It only
 * has to cover the time between remembering a job and SQS accepting it (one bounded send);
 * remembering too long is harmless (see `createSqsPurchaseProducer`), too short is not.
 */
const REMEMBER_MARGIN_SECONDS = 60;

export interface SqsProducerOptions {
  sqs: SQSClient;
  /** URL of the FIFO queue (its name ends in `.fifo`). */
  queueUrl: string;
  /** Where the producer remembers the job it sent under each deduplication id. */
  redis: RedisClient;
  /** The payonce key prefix; records live under `<prefix>:sqs-dedup:`. */
  prefix: string;
  /**
   * How long a sent job is remembered under its key. Set it to the idempotency TTL; it is never
   * less than SQS's 5-minute window plus a margin.
   */
  rememberSeconds: number;
  /** Upper bound on one enqueue (the send is aborted past it). Default 2 s. */
  timeoutMs?: number;
}

/** How long the producer remembers a job for a given idempotency TTL. */
export function sqsRememberSeconds(idempotencyTtlSeconds: number): number {
  return Math.max(idempotencyTtlSeconds, SQS_DEDUPLICATION_WINDOW_SECONDS + REMEMBER_MARGIN_SECONDS);
}

/**
 * Enqueues purchase jobs on an SQS FIFO queue: MessageDeduplicationId derived from the
 * idempotency key, MessageGroupId = purchase id (unrelated purchases run in parallel; a purchase's
 * own messages stay in order), body = the job.
 *
 * Telling a folded send apart: SQS accepts a send whose deduplication id it saw in the last five
 * minutes and drops it silently, answering with the first message's MessageId. That id alone
 * cannot say which purchase the kept message carries when the first send's reply was lost (an
 * enqueue that timed out after reaching SQS). So the producer remembers, in Redis and before
 * sending, the first job it sends under each key, and any later send under that key sends that
 * same job again. Whatever SQS keeps is then that job, and `queuedPurchaseId` names it, whether
 * the first send arrived, arrived late, or never did. A re-send after SQS's window has passed
 * enqueues the same purchase a second time, which the worker's idempotent step absorbs.
 */
export function createSqsPurchaseProducer(options: SqsProducerOptions): PurchaseProducer {
  const { sqs, queueUrl, rememberSeconds, timeoutMs = 2_000 } = options;
  const keys = redisKeys(options.prefix);
  const scripts = payonceScripts(options.redis);

  /** Runs one SQS call within `timeoutMs`, aborting the request when the time is up. */
  async function bounded<T>(call: (abortSignal: AbortSignal) => Promise<T>, what: string): Promise<T> {
    const controller = new AbortController();
    try {
      return await withTimeout(call(controller.signal), timeoutMs, what);
    } catch (error) {
      if (error instanceof TimeoutError) controller.abort();
      throw error;
    }
  }

  return {
    async enqueuePurchase(job: PurchaseJob): Promise<EnqueueResult> {
      const deduplicationId = sqsDeduplicationId(job.idempotencyKey);
      const remembered = await scripts.payonceRememberSqsJob(
        1,
        keys.sqsSentJob(deduplicationId),
        JSON.stringify(job),
        rememberSeconds,
      );
      const sent = remembered === null ? job : PurchaseJobSchema.parse(JSON.parse(remembered));
      await bounded(
        (abortSignal) =>
          sqs.send(
            new SendMessageCommand({
              QueueUrl: queueUrl,
              MessageBody: JSON.stringify(sent),
              MessageGroupId: sent.purchaseId,
              MessageDeduplicationId: deduplicationId,
            }),
            { abortSignal },
          ),
        'enqueue',
      );
      return { queuedPurchaseId: sent.purchaseId };
    },

    async ping() {
      await bounded(
        (abortSignal) =>
          sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }), {
            abortSignal,
          }),
        'queue check',
      );
    },

    async close() {
      // Nothing of its own to close: the SQS client and Redis belong to whoever created them.
    },
  };
}
