import { UnrecoverableError, WaitingError, type Job, type Worker } from 'bullmq';
import type { Logger } from '../../shared/logger.js';
import { createWorker, type BullmqStore } from '../../shared/queue/bullmq-store.js';
import { PurchaseJobSchema, type PaymentStatus, type PurchaseJob } from '../../shared/purchase/purchase.js';
import { TimeoutError, withTimeout } from '../../shared/timeout.js';
import type { PurchaseProcessor } from '../process-purchase.js';
import { createPurchaseAttempts, type AttemptMetrics } from '../purchase-attempt.js';

export interface BullmqPurchaseWorkerOptions {
  /** Where the queue lives (Redis or PostgreSQL). */
  store: BullmqStore;
  queueName: string;
  processor: PurchaseProcessor;
  logger: Logger;
  /** The gateway's ledger lookup (see purchase-attempt.ts). Default: never charged. */
  isCharged?: (purchaseId: string) => Promise<boolean>;
  /** Jobs run at once by this process. */
  concurrency: number;
  /** How often to look for jobs whose worker died (BullMQ default 30 s). */
  stalledIntervalMs: number;
  /** How long a job's lock lasts without renewal (BullMQ default 30 s). */
  lockDurationMs: number;
  /** Counts the retry classification's decisions. Default: none. */
  metrics?: AttemptMetrics | undefined;
}

/** BullMQ's reason for a job it failed because it stalled more than `maxStalledCount` times. */
const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

/** Raised inside a job when the worker's shutdown deadline passes and the job goes back. */
class HandedBack extends Error {
  override readonly name = 'HandedBack';
}

/**
 * Feeds BullMQ jobs to the purchase step, with the retry classification every transport shares:
 * a malformed job or a permanent failure becomes UnrecoverableError (no retry); anything else is
 * thrown as is and BullMQ retries it with the queue's exponential backoff (on the last attempt
 * the purchase has been recorded as failed first, so it never vanishes).
 */
export function createBullmqPurchaseWorker(options: BullmqPurchaseWorkerOptions) {
  const { processor, logger } = options;
  const attempts = createPurchaseAttempts({
    processor,
    logger,
    isCharged: options.isCharged,
    metrics: options.metrics,
  });

  const worker = createWorker<PurchaseJob, { status: PaymentStatus }>(
    options.queueName,
    async (job: Job<PurchaseJob>, token?: string, signal?: AbortSignal) => {
      const data = attempts.parseJob(job.data, { jobId: job.id });
      if (!data) throw new UnrecoverableError('malformed purchase job');
      try {
        // The API's job for a purchase has the purchase id as its id, which BullMQ keeps unique,
        // and BullMQ counts a start in the same script that hands the job out: together they
        // mean no earlier run of this purchase. Any other job (re-added by hand) looks first.
        const firstRun = job.id === data.purchaseId && job.attemptsStarted === 1;
        const purchase = await untilAborted(processor.processPurchase(data, { firstRun }), signal);
        return { status: purchase.status as PaymentStatus };
      } catch (error) {
        if (error instanceof HandedBack) {
          // Back to the queue at once, without spending an attempt. The step may still finish
          // here in the background; the next run then finds the payment and charges nothing.
          await job.moveToWait(token);
          logger.warn({ purchaseId: data.purchaseId }, 'handed back to the queue at shutdown');
          throw new WaitingError();
        }
        const failed = await attempts.classifyFailure(data, error, {
          attempt: job.attemptsMade + 1,
          attempts: job.opts.attempts ?? 1,
        });
        if (failed === 'permanent') throw new UnrecoverableError((error as Error).message);
        throw error;
      }
    },
    options.store,
    {
      concurrency: options.concurrency,
      stalledInterval: options.stalledIntervalMs,
      lockDuration: options.lockDurationMs,
      // A job whose worker died is retried this many times before BullMQ gives up on it.
      maxStalledCount: 5,
      // After a failed fetch or settle (Redis or Postgres away), try again a second later, not
      // BullMQ's default 15 s: an outage then delays purchases by about its own length only.
      runRetryDelay: 1_000,
      autorun: false,
    },
  );

  worker.on('error', (error) => logger.error({ err: error }, 'worker error'));
  worker.on('failed', (job, error) => {
    // A job that stalled too often is failed by BullMQ without running our step again.
    if (job && error.message === STALLED_TOO_OFTEN) {
      const parsed = PurchaseJobSchema.safeParse(job.data);
      // As on a last attempt: recorded as failed unless it was charged (then the reconciler).
      if (parsed.success) void attempts.classifyFailure(parsed.data, error, { attempt: 1, attempts: 1 });
    }
  });

  return worker;
}

/** Settles like `work`, or rejects with HandedBack as soon as `signal` aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new HandedBack('shutdown deadline'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Stops taking jobs and waits for those in flight. Past `timeoutMs` it hands every job still
 * running back to the queue (another worker picks it up at once) and closes. Idempotent.
 */
export async function closeWorkerWithin(worker: Worker, timeoutMs: number, logger: Logger): Promise<void> {
  const closing = worker.close();
  try {
    await withTimeout(closing, timeoutMs, 'finishing in-flight jobs');
  } catch (error) {
    if (!(error instanceof TimeoutError)) throw error;
    logger.warn({ timeoutMs }, 'jobs still running at the shutdown deadline; handing them back');
    worker.cancelAllJobs('shutdown deadline');
    await closing;
  }
}
