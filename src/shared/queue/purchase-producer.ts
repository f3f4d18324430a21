import type { PurchaseJob } from '../purchase/purchase.js';

export interface EnqueueResult {
  /**
   * The purchase whose job holds the queue slot for this idempotency key: the job we sent, or,
   * when the queue collapsed it into an earlier job still pending under the same key, that one.
   */
  queuedPurchaseId: string;
}

/** Sends purchase jobs to whichever queue the deployment uses (BullMQ, or SQS on AWS). */
export interface PurchaseProducer {
  /**
   * Enqueues a purchase, deduplicated by its idempotency key. Rejects if the queue did not
   * take the job; the job is then not queued.
   */
  enqueuePurchase(job: PurchaseJob): Promise<EnqueueResult>;
  /** Answers whether the queue is reachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
