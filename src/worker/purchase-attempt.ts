import type { Logger } from '../shared/logger.js';
import { PurchaseJobSchema, type PurchaseJob } from '../shared/purchase/purchase.js';
import { PermanentPurchaseError, type PurchaseProcessor } from './process-purchase.js';

/**
 * How a failed attempt ends, the same for every transport (BullMQ, the SQS poller, the Lambda
 * batch handler): `permanent` must not be retried; `exhausted` was the last attempt, and the
 * purchase, never charged, has been recorded as failed so it never vanishes; `unrecorded` was the
 * last attempt too, but its outcome could not be recorded (the gateway charged it, or may have,
 * or no store took the failure): the job must end visibly (BullMQ's failed set, SQS's
 * dead-letter queue), never be deleted, and the reconciler completes it once Postgres answers;
 * `retry` is transient (Postgres or Redis unreachable, a timeout) and goes back to the queue.
 */
export const FAILED_ATTEMPTS = ['permanent', 'exhausted', 'unrecorded', 'retry'] as const;
export type FailedAttempt = (typeof FAILED_ATTEMPTS)[number];

/** Where the classification reports what it decided (metrics; src/worker/metrics.ts). */
export interface AttemptMetrics {
  /** An attempt failed and was classified, or a job was dropped as `malformed`. */
  attemptFailed: (result: FailedAttempt | 'malformed') => void;
}

/** Where an attempt stands in its job's retry budget. */
export interface AttemptNumber {
  /** This attempt, 1 for the first. */
  attempt: number;
  /** The job's attempts in all (JOB_ATTEMPTS). */
  attempts: number;
}

/**
 * The retry classification every transport uses: whether a job's data is a purchase job at
 * all, and what a failure of the purchase step means for the job.
 */
export function createPurchaseAttempts(deps: {
  processor: Pick<PurchaseProcessor, 'recordRetriesExhausted'>;
  logger: Logger;
  /**
   * Whether the gateway has charged a purchase (its ledger). An approved charge is never
   * recorded as `retries_exhausted`. Default: never charged (for tests of the classification).
   */
  isCharged?: ((purchaseId: string) => Promise<boolean>) | undefined;
  /** Counts each classification. Default: none. */
  metrics?: AttemptMetrics | undefined;
}) {
  const { processor, logger, metrics } = deps;
  const isCharged = deps.isCharged ?? (async () => false);

  /** What a failure of the purchase step means for its job (see FailedAttempt). */
  async function classify(
    job: PurchaseJob,
    error: unknown,
    { attempt, attempts }: AttemptNumber,
  ): Promise<FailedAttempt> {
    if (error instanceof PermanentPurchaseError) return 'permanent';
    if (attempt >= attempts) {
      // A charge the gateway may have made is not a failure to record: an unknown answer
      // counts as charged.
      if (await isCharged(job.purchaseId).catch(() => true)) {
        logger.error(
          { err: error, purchaseId: job.purchaseId, attempt, attempts },
          'retries exhausted after the gateway charged; left for the reconciler to record',
        );
        return 'unrecorded';
      }
      try {
        await processor.recordRetriesExhausted(job, error);
      } catch (recordError) {
        logger.error({ err: recordError, purchaseId: job.purchaseId }, 'could not record the failure anywhere');
        return 'unrecorded';
      }
      return 'exhausted';
    }
    logger.warn({ err: error, purchaseId: job.purchaseId, attempt, attempts }, 'purchase attempt failed; will retry');
    return 'retry';
  }

  return {
    /**
     * The purchase job in `data`, or null when it is malformed: retrying cannot repair it, so
     * the transport drops it. The log line keeps what arrived (jobs never carry secrets) with
     * `context` (the job or message id).
     */
    parseJob(data: unknown, context: Record<string, unknown>): PurchaseJob | null {
      const parsed = PurchaseJobSchema.safeParse(data);
      if (parsed.success) return parsed.data;
      logger.error({ ...context, issues: parsed.error.issues }, 'malformed purchase job; dropping it');
      metrics?.attemptFailed('malformed');
      return null;
    },

    /** Classifies a failure of the purchase step, recording the purchase as failed on the last attempt. */
    async classifyFailure(job: PurchaseJob, error: unknown, attempt: AttemptNumber): Promise<FailedAttempt> {
      const result = await classify(job, error, attempt);
      metrics?.attemptFailed(result);
      return result;
    },
  };
}

export type PurchaseAttempts = ReturnType<typeof createPurchaseAttempts>;
