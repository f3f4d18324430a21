import type { Logger } from '../shared/logger.js';
import { ReferenceGoneError, type PaymentsRepository } from '../shared/purchase/payments-repository.js';
import { FAILURE_REASONS, type PaymentStatus, type Purchase, type PurchaseJob } from '../shared/purchase/purchase.js';
import type { PurchaseStateStore } from '../shared/purchase/purchase-states.js';
import type { PaymentGateway } from './payment-gateway.js';

/** A failure that retrying cannot fix; the transport must not retry the job. */
export class PermanentPurchaseError extends Error {
  override readonly name = 'PermanentPurchaseError';
}

/** How one run of the purchase step ended: an outcome recorded now, a redelivery of one recorded before, or thrown. */
export const STEP_OUTCOMES = ['succeeded', 'failed', 'already_recorded', 'error'] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

/** Where the purchase step reports what it did (metrics; src/worker/metrics.ts). */
export interface PurchaseStepMetrics {
  /** One run of `processPurchase` ended, `seconds` after it started. */
  stepEnded: (outcome: StepOutcome, seconds: number) => void;
  /** The worker recorded a purchase's outcome: `succeeded`, or `failed` with its reason. */
  purchaseRecorded: (status: PaymentStatus, failureReason: string | null) => void;
}

export interface PurchaseProcessorDeps {
  payments: Pick<PaymentsRepository, 'findPayment' | 'recordPayment'>;
  states: Pick<PurchaseStateStore, 'markProcessing' | 'markFinished'>;
  gateway: PaymentGateway;
  logger: Logger;
  /** Counts runs and recorded outcomes. Default: none. */
  metrics?: PurchaseStepMetrics | undefined;
}

/**
 * The business step of a purchase job, the same for every transport (BullMQ, SQS, Lambda).
 * Safe to run any number of times for one purchase: a purchase already in Postgres is not
 * charged again, and the write itself keeps one row per purchase.
 *
 * Errors: PermanentPurchaseError must not be retried; anything else is transient (Postgres or
 * Redis unreachable, timeouts) and should be retried with backoff.
 */
export function createPurchaseProcessor(deps: PurchaseProcessorDeps) {
  const { payments, states, gateway, logger, metrics } = deps;

  /**
   * Runs one purchase. `firstRun` is the transport's word that no earlier run of this job ever
   * started (BullMQ counts starts atomically as it hands a job out), so no payment can exist
   * yet and the lookup is skipped. Even if that word were wrong, the write keeps one row and
   * the gateway answers a repeated purchase id with its first result.
   */
  async function processPurchase(job: PurchaseJob, { firstRun = false } = {}): Promise<Purchase> {
    const { purchaseId } = job;
    const started = performance.now();
    let outcome: StepOutcome = 'error';
    try {
      // A redelivery of a purchase that was already written: announce it again, charge nothing.
      const existing = firstRun ? null : await payments.findPayment(purchaseId);
      if (existing) {
        logger.info({ purchaseId, status: existing.status }, 'purchase already recorded; not charging again');
        await states.markFinished(existing, { idempotencyKey: job.idempotencyKey });
        outcome = 'already_recorded';
        return existing;
      }

      await states.markProcessing({ purchaseId, idempotencyKey: job.idempotencyKey });
      const charge = await gateway.charge({ purchaseId, amount: job.amount });
      const decided = charge.approved
        ? { status: 'succeeded' as const, failureReason: null }
        : { status: 'failed' as const, failureReason: charge.reason };

      let payment: Purchase;
      try {
        payment = await payments.recordPayment(job, decided);
      } catch (error) {
        if (error instanceof ReferenceGoneError) {
          await markFailedWithoutPayment(job, FAILURE_REASONS.REFERENCE_GONE);
          metrics?.purchaseRecorded('failed', FAILURE_REASONS.REFERENCE_GONE);
          throw new PermanentPurchaseError('user or product was deleted before payment', { cause: error });
        }
        throw error;
      }
      // The row Postgres keeps, which is an earlier run's if one got there first.
      const status = payment.status === 'succeeded' ? 'succeeded' : 'failed';
      metrics?.purchaseRecorded(status, payment.failureReason);
      await states.markFinished(payment, { idempotencyKey: job.idempotencyKey });
      logger.info(
        { purchaseId, status: payment.status, failureReason: payment.failureReason, amount: payment.amount },
        'purchase finished',
      );
      outcome = status;
      return payment;
    } finally {
      metrics?.stepEnded(outcome, (performance.now() - started) / 1000);
    }
  }

  /** Keeps a purchase that cannot be written visible as failed instead of stuck in flight. */
  async function markFailedWithoutPayment(job: PurchaseJob, reason: string): Promise<void> {
    const now = new Date();
    await states.markFinished(
      {
        purchaseId: job.purchaseId,
        userId: job.userId,
        productId: job.productId,
        status: 'failed',
        amount: job.amount,
        failureReason: reason,
        createdAt: new Date(job.acceptedAt),
        updatedAt: now,
      },
      { idempotencyKey: job.idempotencyKey, inPostgres: false },
    );
  }

  /**
   * Called when a job's retry budget is spent and the purchase was never charged: records it
   * as failed (in Postgres when it answers, so the outcome is durable; otherwise at least in
   * Redis), never leaving it silently in flight. Rejects when neither store took it.
   */
  async function recordRetriesExhausted(job: PurchaseJob, cause: unknown): Promise<Purchase | null> {
    const log = logger.child({ purchaseId: job.purchaseId });
    log.error({ err: cause }, 'retries exhausted; recording the purchase as failed');
    try {
      const payment = await payments.recordPayment(job, {
        status: 'failed',
        failureReason: FAILURE_REASONS.RETRIES_EXHAUSTED,
      });
      await states.markFinished(payment, { idempotencyKey: job.idempotencyKey });
      return payment;
    } catch (error) {
      log.error({ err: error }, 'could not write the failure to Postgres; recorded in Redis only');
      await markFailedWithoutPayment(job, FAILURE_REASONS.RETRIES_EXHAUSTED);
      return null;
    }
  }

  return { processPurchase, recordRetriesExhausted };
}

export type PurchaseProcessor = ReturnType<typeof createPurchaseProcessor>;
