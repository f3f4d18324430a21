import type { PurchaseJob } from '../purchase/purchase.js';

export interface EnqueueResult {
  /**
   * The purchase whose job holds the queue slot for this idempotency key: the job we sent, or,
   * when the queue collapsed it into an earlier job still pending under the same key, that one.
   */
  queuedPurchaseId: string;
}

export interface QueueDepth {
  /** Jobs waiting for a worker, delayed retries included. */
  waiting: number;
  /** Jobs a worker is running. */
  active: number;
  /** Seconds since the oldest job ready to run (not a delayed retry) was added; 0 when none waits. */
  oldestWaitingAgeSeconds: number;
}

/** Sends purchase jobs to whichever queue the deployment uses (BullMQ, or SQS on AWS). */
export interface PurchaseProducer {
  /**
   * Enqueues a purchase, deduplicated by its idempotency key. Rejects if the queue did not
   * take the job; the job is then not queued.
   */
  enqueuePurchase(job: PurchaseJob): Promise<EnqueueResult>;
  /**
   * How many jobs wait to be run and how old the oldest of them is, for metrics. Absent where the
   * queue cannot tell cheaply (SQS: CloudWatch has its own queue metrics).
   */
  depth?(): Promise<QueueDepth>;
  /** Answers whether the queue is reachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
