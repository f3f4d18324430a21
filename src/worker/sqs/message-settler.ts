import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { PurchaseJobSchema, type PurchaseJob } from '../shared/purchase/purchase.js';
import { PermanentPurchaseError, type PurchaseProcessor } from './process-purchase.js';

/** What a transport knows about one SQS message. */
export interface SqsPurchaseMessage {
  messageId: string;
  body: string;
  /** SQS's ApproximateReceiveCount: 1 on the first delivery. */
  receiveCount: number;
}

/**
 * How one message ended. `settled` messages are done with and must be deleted (processed,
 * failed for good, or malformed); the others failed transiently and must come back later.
 */
export type SqsMessageOutcome =
  | { settled: true; result: 'processed' | 'permanent_failure' | 'retries_exhausted' | 'malformed' }
  | { settled: false; error: unknown; retryDelaySeconds: number };

export interface SqsMessageSettlerOptions {
  processor: Pick<PurchaseProcessor, 'processPurchase' | 'recordRetriesExhausted'>;
  logger: Logger;
  /**
   * The receive on which a transient failure becomes final (JOB_ATTEMPTS). Keep it at most the
   * queue's maxReceiveCount, or SQS dead-letters a message before its failure is recorded.
   */
  attempts: number;
  /**
   * First retry delay, doubling with every receive, returned as `retryDelaySeconds` for the
   * consumer to apply. The SQS worker process applies it; on Lambda a failed record comes back
   * after the queue's visibility timeout instead.
   */
  backoffMs: number;
  /** Cap on the retry delay, in seconds. */
  maxBackoffSeconds: number;
}

/** The receive count SQS reported, 1 when it is missing. */
export function receiveCountOf(attributes: Partial<Record<string, string>> | undefined): number {
  const count = Number(attributes?.ApproximateReceiveCount);
  return Number.isInteger(count) && count > 0 ? count : 1;
}

/**
 * Runs the purchase step for one SQS message and classifies the result, the same way for the
 * SQS worker process and the Lambda handler (and as the BullMQ worker does): a malformed message
 * or a PermanentPurchaseError is final (no retry); any other error is transient and retried with
 * backoff, except on the last receive, where the purchase is recorded as failed so it never
 * vanishes into the dead-letter queue unseen. Never throws.
 */
export function createSqsMessageSettler(options: SqsMessageSettlerOptions) {
  const { processor, logger, attempts, backoffMs, maxBackoffSeconds } = options;

  function retryDelaySeconds(receiveCount: number): number {
    const delayMs = backoffMs * 2 ** Math.min(receiveCount - 1, 30);
    return Math.min(Math.ceil(delayMs / 1000), maxBackoffSeconds);
  }

  function parse(message: SqsPurchaseMessage): PurchaseJob | null {
    let data: unknown;
    try {
      data = JSON.parse(message.body);
    } catch {
      data = undefined;
    }
    const parsed = PurchaseJobSchema.safeParse(data);
    if (parsed.success) return parsed.data;
    // Retrying cannot repair it; the log line keeps what arrived (jobs never carry secrets).
    logger.error(
      { messageId: message.messageId, body: message.body.slice(0, 2_000), issues: parsed.error.issues },
      'malformed purchase message; dropping it',
    );
    return null;
  }

  return async function settle(message: SqsPurchaseMessage): Promise<SqsMessageOutcome> {
    const job = parse(message);
    if (!job) return { settled: true, result: 'malformed' };
    try {
      await processor.processPurchase(job);
      return { settled: true, result: 'processed' };
    } catch (error) {
      if (error instanceof PermanentPurchaseError) return { settled: true, result: 'permanent_failure' };
      if (message.receiveCount >= attempts) {
        await processor.recordRetriesExhausted(job, error);
        return { settled: true, result: 'retries_exhausted' };
      }
      logger.warn(
        { err: error, purchaseId: job.purchaseId, attempt: message.receiveCount, attempts },
        'purchase attempt failed; will retry',
      );
      return { settled: false, error, retryDelaySeconds: retryDelaySeconds(message.receiveCount) };
    }
  };
}

export type SqsMessageSettler = ReturnType<typeof createSqsMessageSettler>;

/**
 * The settler as every SQS consumer configures it. On Lambda the infrastructure sets
 * JOB_ATTEMPTS to the queue's maxReceiveCount, so the last receive records the failure.
 */
export function sqsMessageSettlerFromConfig(
  config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS' | 'SQS_MAX_BACKOFF_SECONDS'>,
  processor: PurchaseProcessor,
  logger: Logger,
) {
  return createSqsMessageSettler({
    processor,
    logger,
    attempts: config.JOB_ATTEMPTS,
    backoffMs: config.JOB_BACKOFF_MS,
    maxBackoffSeconds: config.SQS_MAX_BACKOFF_SECONDS,
  });
}
