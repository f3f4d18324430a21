import type { Config } from '../config.js';
import { RETENTION_SECONDS, type PurchaseJob } from '../purchase/purchase.js';
import { withTimeout } from '../timeout.js';
import { createQueue, type BullmqStore } from './bullmq-store.js';
import type { EnqueueResult, PurchaseProducer } from './purchase-producer.js';

export const PURCHASE_JOB_NAME = 'purchase';

export interface BullmqProducerOptions {
  /** Where the queue lives (Redis or PostgreSQL); the caller's connection is never closed here. */
  store: BullmqStore;
  queueName: string;
  /** Attempts per job before it fails for good (transient failures only). */
  attempts: number;
  /** First retry delay; doubles on each attempt. */
  backoffMs: number;
  /** Upper bound on one enqueue; past it the enqueue counts as failed. Default 2 s. */
  timeoutMs?: number;
}

/**
 * Enqueues purchase jobs on BullMQ. The job id is the purchase id and the deduplication id is
 * the idempotency key, so a second job for a key collapses into the first for as long as that
 * job is unfinished (BullMQ's simple mode); BullMQ then hands back the earlier job's id, which is
 * how the API tells. After the outcome the claim in Redis blocks duplicates for the TTL.
 */
export function createBullmqPurchaseProducer(options: BullmqProducerOptions): PurchaseProducer {
  const { store, queueName, attempts, backoffMs, timeoutMs = 2_000 } = options;
  const queue = createQueue<PurchaseJob>(queueName, store, {
    defaultJobOptions: {
      attempts,
      backoff: { type: 'exponential', delay: backoffMs },
      // Completed jobs are kept a while for dashboards and the reconciler's look at a job. On
      // Redis, at most an hour and 10,000 of them. On Postgres only by age, and shorter: BullMQ's
      // PostgreSQL backend enforces a count by reading every completed job of the queue at each
      // completion, which measured at about 4 ms of Postgres CPU per job (BENCHMARKS.md).
      removeOnComplete: store.backend === 'redis' ? { age: 3600, count: 10_000 } : { age: 600 },
      removeOnFail: { age: RETENTION_SECONDS },
    },
  });
  let closing: Promise<void> | undefined;

  return {
    async enqueuePurchase(job: PurchaseJob): Promise<EnqueueResult> {
      const added = await withTimeout(
        queue.add(PURCHASE_JOB_NAME, job, {
          jobId: job.purchaseId,
          // No TTL: the deduplication key lives until the job completes or fails for good, so a
          // job retrying with backoff for longer than any fixed window still folds a second
          // enqueue under its key (one whose claim was released or lost) into itself.
          deduplication: { id: job.idempotencyKey },
        }),
        timeoutMs,
        'enqueue',
      );
      return { queuedPurchaseId: added.id ?? job.purchaseId };
    },
    async depth() {
      const [counts, [oldest]] = await Promise.all([
        queue.getJobCounts('wait', 'prioritized', 'delayed', 'active'),
        queue.getJobs(['wait'], 0, 0, true),
      ]);
      return {
        waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0),
        active: counts.active ?? 0,
        oldestWaitingAgeSeconds: oldest ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0,
      };
    },
    async ping() {
      if (store.backend === 'redis') await store.connection.ping();
      else await queue.getJobCounts('active');
    },
    close() {
      closing ??= queue.close();
      return closing;
    },
  };
}

/** The producer as every process configures it: attempts, backoff and dedup window from config. */
export function purchaseProducerFromConfig(
  config: Pick<Config, 'QUEUE_NAME' | 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>,
  store: BullmqStore,
): PurchaseProducer {
  return createBullmqPurchaseProducer({
    store,
    queueName: config.QUEUE_NAME,
    attempts: config.JOB_ATTEMPTS,
    backoffMs: config.JOB_BACKOFF_MS,
  });
}
