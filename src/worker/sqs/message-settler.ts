import type { Logger } from '../../shared/logger.js';
import type { PurchaseProcessor } from '../process-purchase.js';
import { createPurchaseAttempts, type AttemptMetrics } from '../purchase-attempt.js';

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
  /** The gateway's ledger lookup (see purchase-attempt.ts). Default: never charged. */
  isCharged?: (purchaseId: string) => Promise<boolean>;
  /** Counts the retry classification's decisions. Default: none. */
  metrics?: AttemptMetrics | undefined;
}

/** The receive count SQS reported, 1 when it is missing. */
export function receiveCountOf(attributes: Partial<Record<string, string>> | undefined): number {
  const count = Number(attributes?.ApproximateReceiveCount);
  return Number.isInteger(count) && count > 0 ? count : 1;
}

/**
 * Runs the purchase step for one SQS message and classifies the result with the retry
 * classification every transport shares (purchase-attempt.ts), for the SQS worker process and
 * the Lambda handler alike: a malformed message or a permanent failure is final (no retry); any
 * other error is transient and retried with backoff, except on the last receive, where the
 * purchase is recorded as failed so it never vanishes into the dead-letter queue unseen. Never
 * throws.
 */
export function createSqsMessageSettler(options: SqsMessageSettlerOptions) {
  const { processor, logger, attempts, backoffMs, maxBackoffSeconds } = options;
  const classification = createPurchaseAttempts({
    processor,
    logger,
    isCharged: options.isCharged,
    metrics: options.metrics,
  });

  function retryDelaySeconds(receiveCount: number): number {
    const delayMs = backoffMs * 2 ** Math.min(receiveCount - 1, 30);
    return Math.min(Math.ceil(delayMs / 1000), maxBackoffSeconds);
  }

  return async function settle(message: SqsPurchaseMessage): Promise<SqsMessageOutcome> {
    let data: unknown;
    try {
      data = JSON.parse(message.body);
    } catch {
      data = undefined;
    }
    const job = classification.parseJob(data, { messageId: message.messageId, body: message.body.slice(0, 2_000) });
    if (!job) return { settled: true, result: 'malformed' };
    try {
      await processor.processPurchase(job);
      return { settled: true, result: 'processed' };
    } catch (error) {
      const failed = await classification.classifyFailure(job, error, { attempt: message.receiveCount, attempts });
      if (failed === 'permanent') return { settled: true, result: 'permanent_failure' };
      if (failed === 'exhausted') return { settled: true, result: 'retries_exhausted' };
      // 'unrecorded' on the last receive: not deleted, so SQS dead-letters it past
      // maxReceiveCount (the alarm fires) and the reconciler completes it from Postgres.
      return { settled: false, error, retryDelaySeconds: retryDelaySeconds(message.receiveCount) };
    }
  };
}

export type SqsMessageSettler = ReturnType<typeof createSqsMessageSettler>;
