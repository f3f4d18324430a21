import { randomUUID } from 'node:crypto';
import { AppError, isAppError, serviceUnavailable } from './errors.js';
import type { Logger } from '../shared/logger.js';
import type { PurchaseReferencesLookup } from './catalog/purchase-references.js';
import {
  idempotencyKeyFor,
  purchaseFingerprint,
  type Claim,
  type IdempotencyStore,
} from '../shared/purchase/idempotency.js';
import type { PaymentsRepository } from '../shared/purchase/payments-repository.js';
import type { Purchase, PurchaseJob } from '../shared/purchase/purchase.js';
import type { PurchaseStateStore } from '../shared/redis/purchase-state-store.js';
import type { PurchaseProducer } from '../shared/queue/purchase-producer.js';
import type { OutcomeWaitRequest, PurchaseOutcomeWaiter } from './purchase-outcome-waiter.js';

export interface PurchaseRequest {
  userId: number;
  productId: number;
  /** The client's `Idempotency-Key` header, if it sent one. */
  idempotencyKey?: string | undefined;
  /** The client's `Prefer: wait`: how long it waits for the outcome, and whether it is still there. None: no wait. */
  wait?: OutcomeWaitRequest | undefined;
}

export type PurchaseSubmission =
  /** First submission, accepted and queued (or not finished within the wait). */
  | { kind: 'accepted'; purchaseId: string }
  /** First submission that finished within the client's wait. */
  | { kind: 'finished'; purchase: Purchase }
  /** The key is held by an earlier purchase with the same body. */
  | { kind: 'duplicate'; purchaseId: string };

export interface PurchaseServiceDeps {
  idempotency: Pick<IdempotencyStore, 'claimIdempotencyKey' | 'confirmClaim' | 'releaseClaim' | 'redirectClaim'>;
  states: Pick<PurchaseStateStore, 'getPurchaseState'>;
  payments: Pick<PaymentsRepository, 'findPayment'>;
  references: PurchaseReferencesLookup;
  producer: Pick<PurchaseProducer, 'enqueuePurchase'>;
  waiter: Pick<PurchaseOutcomeWaiter, 'waitForOutcome'>;
  logger: Logger;
  newPurchaseId?: () => string;
  now?: () => Date;
}

/**
 * Accepting purchases: validate references, claim the idempotency key, enqueue, and optionally
 * wait for the outcome. Every failure after the claim either releases it or leaves a queued job
 * behind it, so a client is never blocked by a key with no purchase.
 */
export function createPurchaseService(deps: PurchaseServiceDeps) {
  const { idempotency, states, payments, references, producer, waiter, logger } = deps;
  const newPurchaseId = deps.newPurchaseId ?? randomUUID;
  const now = deps.now ?? (() => new Date());

  /** Settles a duplicate: same body -> points at the holder; different body -> 422. */
  function duplicateOf(existing: Claim, fingerprint: string): PurchaseSubmission {
    if (existing.fingerprint !== fingerprint) {
      throw new AppError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was already used with a different request body',
      );
    }
    return { kind: 'duplicate', purchaseId: existing.purchaseId };
  }

  async function getPurchase(purchaseId: string): Promise<Purchase | null> {
    // Postgres is the record of finished purchases; Redis only knows in-flight ones (and
    // outcomes Postgres could not take).
    const payment = await dependency('Postgres', payments.findPayment(purchaseId));
    if (payment) return payment;
    const inFlight = await dependency('Redis', states.getPurchaseState(purchaseId));
    if (inFlight) return inFlight;
    // The worker drops the in-flight record only after Postgres holds the payment, so a
    // purchase that finished between the two reads above is in Postgres now.
    return dependency('Postgres', payments.findPayment(purchaseId));
  }

  async function submitPurchase(request: PurchaseRequest): Promise<PurchaseSubmission> {
    const { userId, productId } = request;
    const key = idempotencyKeyFor({ userId, productId, headerKey: request.idempotencyKey });
    const fingerprint = purchaseFingerprint({ userId, productId });

    // Usually answered from memory; unknown ids are rejected before anything is claimed.
    const { userExists, price } = await dependency('Postgres', references.lookupPurchaseReferences(userId, productId));
    if (!userExists) throw new AppError('USER_NOT_FOUND', `User ${userId} does not exist`);
    if (price === null) throw new AppError('PRODUCT_NOT_FOUND', `Product ${productId} does not exist`);

    const purchaseId = newPurchaseId();
    const acceptedAt = now().toISOString();
    const claim = await dependency(
      'Redis',
      idempotency.claimIdempotencyKey(
        key,
        { purchaseId, fingerprint },
        { userId, productId, amount: price, status: 'queued', createdAt: acceptedAt },
      ),
    );
    // A duplicate ends here, having cost one Redis round trip.
    if (!claim.claimed) return duplicateOf(claim.existing, fingerprint);

    const job: PurchaseJob = {
      purchaseId,
      userId,
      productId,
      amount: price,
      idempotencyKey: key,
      acceptedAt,
    };
    // Listen before enqueueing so a fast worker cannot finish unseen. No wait either when every
    // waiting place is taken: the client then gets its 202 at once.
    const wait = request.wait ? waiter.waitForOutcome(purchaseId, request.wait, () => getPurchase(purchaseId)) : null;

    let queuedPurchaseId: string;
    try {
      ({ queuedPurchaseId } = await producer.enqueuePurchase(job));
    } catch (error) {
      wait?.cancel();
      const released = await idempotency.releaseClaim(key, purchaseId).catch(() => false);
      // If even the release failed, the claim is still pending and expires within seconds.
      logger.warn({ purchaseId, err: error, released }, 'enqueue failed; claim released');
      throw serviceUnavailable('The purchase queue', error, 'QUEUE_UNAVAILABLE');
    }

    if (queuedPurchaseId !== purchaseId) {
      // The queue already holds a job for this key (its claim was released after an enqueue
      // whose outcome we could not see, or expired a moment before the queue's window): the
      // queue folded our job into it, so this submission is a duplicate of that purchase.
      wait?.cancel();
      await dependency(
        'Redis',
        idempotency.redirectClaim(key, purchaseId, { purchaseId: queuedPurchaseId, fingerprint }),
      );
      logger.info({ purchaseId, queuedPurchaseId }, 'collapsed into a pending purchase by the queue');
      return { kind: 'duplicate', purchaseId: queuedPurchaseId };
    }

    // The job is queued; a failure to confirm only shortens the claim's life, so it is logged
    // rather than turned into an error for a purchase that will be charged.
    await idempotency.confirmClaim(key, purchaseId).catch((error: unknown) => {
      logger.warn({ purchaseId, err: error }, 'could not extend the idempotency claim');
    });
    logger.info({ purchaseId, userId, productId, amount: price }, 'purchase accepted');

    if (wait) {
      const purchase = await wait.outcome;
      if (purchase) return { kind: 'finished', purchase };
    }
    return { kind: 'accepted', purchaseId };
  }

  return { submitPurchase, getPurchase };
}

export type PurchaseService = ReturnType<typeof createPurchaseService>;

/** Turns an infrastructure failure into a 503; lets expected AppErrors through. */
async function dependency<T>(what: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    if (isAppError(error)) throw error;
    throw serviceUnavailable(what, error);
  }
}
