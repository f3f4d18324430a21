import type { Logger } from '../shared/logger.js';
import type { IdempotencyStore } from '../shared/purchase/idempotency.js';
import { purchaseFingerprint } from '../shared/purchase/idempotency.js';
import type { PaymentsRepository } from '../shared/purchase/payments-repository.js';
import { FAILURE_REASONS, isFinal, RETENTION_SECONDS, type PurchaseJob } from '../shared/purchase/purchase.js';
import type { PurchasesRepository, UnpaidPurchase } from '../shared/purchase/purchases-repository.js';
import type { PurchaseProducer } from '../shared/queue/purchase-producer.js';
import type { PurchaseStateStore } from '../shared/purchase/purchase-states.js';

/**
 * What the queue knows of a purchase's job: `alive` (waiting, delayed or running: leave it),
 * `failed` (its attempts ran out without an outcome in Postgres), `missing` (gone: Redis lost it,
 * or it was never enqueued), or `unknown` (a queue that cannot be asked, such as SQS).
 */
export type JobState = 'alive' | 'failed' | 'missing' | 'unknown';

/** The queue side of reconciliation, one implementation per driver. */
export interface JobInspector {
  jobState(purchaseId: string): Promise<JobState>;
  /** Removes a failed job so that its purchase can be enqueued again under the same job id. */
  discardFailed(purchaseId: string): Promise<void>;
}

/** What one reconciliation did; `npm run reconcile` prints it. */
export interface ReconcileReport {
  /** Accepted purchases without a payment, old enough to look at. */
  scanned: number;
  /** Their jobs are still queued or running. */
  alive: number;
  /** Enqueued again: their jobs were gone or had failed without an outcome. */
  requeued: string[];
  /** Their outcome was known only to Redis (Postgres was down when it came): now in Postgres. */
  recorded: string[];
  /** Recorded as failed, never charged: the client's retry under the same key was accepted instead. */
  superseded: string[];
  /** Acceptances answered with anything but 202 whose job never ran: removed, never charged. */
  dropped: string[];
  /** Could not be handled this time (they are looked at again next time). */
  errors: number;
}

/** Where the reconciler reports each run (metrics; src/worker/metrics.ts). */
export interface ReconcilerMetrics {
  /** One run ended: what it did, or `null` when the run itself failed (it is tried again next time). */
  reconciled: (report: ReconcileReport | null) => void;
}

export interface ReconcilerDeps {
  purchases: Pick<PurchasesRepository, 'findUnpaid' | 'dropAbandoned'>;
  payments: Pick<PaymentsRepository, 'recordPayment'>;
  states: Pick<PurchaseStateStore, 'getPurchaseState'>;
  idempotency: Pick<IdempotencyStore, 'claimIdempotencyKey' | 'confirmClaim'>;
  producer: Pick<PurchaseProducer, 'enqueuePurchase'>;
  jobs: JobInspector;
  /** Whether the gateway has charged a purchase (its ledger, by the purchase's gateway key). */
  isCharged: (purchaseId: string) => Promise<boolean>;
  logger: Logger;
  /** Counts each run's report. Default: none. */
  metrics?: ReconcilerMetrics | undefined;
  /** Most purchases looked at per run. Default 500. */
  batchSize?: number;
  /**
   * How far back the first run looks: a purchase unfinished for longer than its key's unfinished
   * life (RETENTION_SECONDS) is out of reach. Later runs start where every purchase before was
   * done. Default 7 days.
   */
  lookBackSeconds?: number;
  now?: () => number;
}

/**
 * Completes accepted purchases that lost their way: accepted (recorded in `purchases`) but with
 * no payment, and whose job is gone (Redis lost its data, an enqueue failed after the purchase
 * was recorded) or failed without an outcome in Postgres (an approved charge whose write kept
 * failing). Each is enqueued again, which is safe because the worker's write keeps one payment
 * per purchase and the gateway answers a repeated key with its first result.
 *
 * One rule keeps it from charging a purchase the client has replaced: a purchase is completed
 * only while it holds its idempotency key (it takes the key back when the key is free, as after a
 * Redis data loss). A purchase whose key another purchase holds was answered 503 and retried by
 * its client; it is recorded as failed (`superseded`) unless the gateway already charged it.
 */
export function createReconciler(deps: ReconcilerDeps) {
  const { purchases, payments, states, idempotency, producer, jobs, isCharged, logger } = deps;
  const batchSize = deps.batchSize ?? 500;
  const now = deps.now ?? Date.now;
  // Every purchase accepted before this has a payment or was dropped, as far as this process
  // has seen: each run scans from here, not from the beginning of time.
  let watermark = new Date(now() - (deps.lookBackSeconds ?? RETENTION_SECONDS) * 1000);

  /** Whether `job` holds its key now, taking it back if it is free. */
  async function holdsItsKey(job: PurchaseJob): Promise<boolean> {
    const claim = { purchaseId: job.purchaseId, fingerprint: purchaseFingerprint(job) };
    const result = await idempotency.claimIdempotencyKey(job.idempotencyKey, claim, {
      userId: job.userId,
      productId: job.productId,
      amount: job.amount,
      status: 'queued',
      createdAt: job.acceptedAt,
    });
    if (!result.claimed && result.existing.purchaseId !== job.purchaseId) return false;
    await idempotency.confirmClaim(job.idempotencyKey, job.purchaseId);
    return true;
  }

  /** Handles one purchase; true when it is done for good (recorded or removed), so later runs may skip it. */
  async function reconcileOne(
    { job, abandoned }: UnpaidPurchase,
    state: JobState,
    report: ReconcileReport,
  ): Promise<boolean> {
    if (state === 'alive') {
      report.alive++;
      return false;
    }
    const kept = await states.getPurchaseState(job);
    if (kept && isFinal(kept.status)) {
      // The worker kept the outcome in Redis when Postgres could not take it.
      await payments.recordPayment(job, { status: kept.status, failureReason: kept.failureReason });
      report.recorded.push(job.purchaseId);
      return true;
    }
    if (abandoned && !(await isCharged(job.purchaseId))) {
      // The client was never told of it (a 503, or a 204 pointing elsewhere): not a purchase.
      await purchases.dropAbandoned(job.purchaseId);
      report.dropped.push(job.purchaseId);
      return true;
    }
    if (!abandoned && !(await holdsItsKey(job)) && !(await isCharged(job.purchaseId))) {
      await payments.recordPayment(job, { status: 'failed', failureReason: FAILURE_REASONS.SUPERSEDED });
      report.superseded.push(job.purchaseId);
      logger.warn({ purchaseId: job.purchaseId }, 'reconciler: superseded by a retry under the same key');
      return true;
    }
    if (state === 'failed') await jobs.discardFailed(job.purchaseId);
    await producer.enqueuePurchase(job);
    report.requeued.push(job.purchaseId);
    logger.warn({ purchaseId: job.purchaseId, jobState: state }, 'reconciler: enqueued a purchase again');
    return false;
  }

  /** One pass (see `reconcile`), counted by the caller. */
  async function reconcileBefore(acceptedBefore: Date): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      scanned: 0,
      alive: 0,
      requeued: [],
      recorded: [],
      superseded: [],
      dropped: [],
      errors: 0,
    };
    const unpaid = await purchases.findUnpaid({ acceptedFrom: watermark, acceptedBefore, limit: batchSize });
    report.scanned = unpaid.length;
    // The next run starts at the oldest purchase not known to be done: one still queued or
    // running, one enqueued again, one that failed here, or the first one past a full batch.
    let next = acceptedBefore.getTime();
    if (unpaid.length === batchSize) next = Math.min(next, Date.parse(unpaid.at(-1)!.job.acceptedAt));
    for (const purchase of unpaid) {
      const { purchaseId, acceptedAt } = purchase.job;
      let done = false;
      try {
        done = await reconcileOne(purchase, await jobs.jobState(purchaseId), report);
      } catch (error) {
        report.errors++;
        logger.warn({ err: error, purchaseId }, 'reconciler: could not handle a purchase; next time');
      }
      if (!done) next = Math.min(next, Date.parse(acceptedAt));
    }
    watermark = new Date(Math.max(watermark.getTime(), next));
    return report;
  }

  return {
    /**
     * One pass over the purchases accepted before `acceptedBefore` that have no payment. With a
     * queue that cannot be asked about a job (SQS), every such purchase is enqueued again: pass
     * an `acceptedBefore` beyond the longest retry schedule there.
     */
    async reconcile({ acceptedBefore }: { acceptedBefore: Date }): Promise<ReconcileReport> {
      try {
        const report = await reconcileBefore(acceptedBefore);
        deps.metrics?.reconciled(report);
        return report;
      } catch (error) {
        deps.metrics?.reconciled(null);
        throw error;
      }
    },
  };
}

export type Reconciler = ReturnType<typeof createReconciler>;
