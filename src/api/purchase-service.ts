import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, isAppError, serviceUnavailable } from './errors.js';
import type { Logger } from '../shared/logger.js';
import type { PurchaseReferencesLookup } from './catalog/purchase-references.js';
import {
  idempotencyKeyFor,
  purchaseFingerprint,
  type ClaimHolder,
  type IdempotencyStore,
} from '../shared/purchase/idempotency.js';
import type { PaymentsRepository } from '../shared/purchase/payments-repository.js';
import type {
  AcceptedPurchase,
  AccountPurchaseJob,
  PurchasesRepository,
  RecordedAcceptance,
} from '../shared/purchase/purchases-repository.js';
import { isFinal, type Purchase, type PurchaseStatus } from '../shared/purchase/purchase.js';
import type { PurchaseStateStore } from '../shared/purchase/purchase-states.js';
import type { PurchaseProducer } from '../shared/queue/purchase-producer.js';
import type { OutcomeWaitRequest, PurchaseOutcomeWaiter } from './purchase-outcome-waiter.js';

export interface PurchaseRequest {
  /** The account the request acts for (its API key's). */
  accountId: number;
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

/** What `listPurchases` lists: an account's purchases, newest first. */
export interface PurchaseListRequest {
  accountId: number;
  /** Only this user's. */
  userId?: number | undefined;
  /** Only those with this status (as a status read gives it). */
  status?: PurchaseStatus | undefined;
  /** At most this many. */
  limit: number;
  /** Only those listed after this purchase of the account (the previous page's last one). */
  startingAfter?: string | undefined;
}

export interface PurchasePage {
  purchases: Purchase[];
  /** Whether more purchases may follow. */
  hasMore: boolean;
  /**
   * Where the next page starts (its `startingAfter`): the last purchase listed, or the last one
   * looked at when the scan bound ended the page early. Null when nothing follows.
   */
  nextStartingAfter: string | null;
}

/**
 * How many rows a page with a status filter reads at a time, and at most in all. `processing`
 * lives in the state store (Redis), not in Postgres, so such a page reads unpaid purchases and
 * keeps those whose status matches; a page that read this many rows ends there, with what it
 * found (perhaps nothing) and `nextStartingAfter` past the rows it read.
 */
export const LIST_SCAN_CHUNK = 100;
export const LIST_SCAN_MAX_ROWS = 1_000;

/**
 * Where the accept path reports the latency of its two round trips (metrics). Each call gives the
 * seconds taken and how the call ended.
 */
export interface PurchaseTimings {
  /** One claim of an idempotency key: `claimed`, `held` by an earlier purchase, or `error`. */
  claim: (seconds: number, result: 'claimed' | 'held' | 'error') => void;
  /** One enqueue of a purchase job: `queued`, or `error`. */
  enqueue: (seconds: number, result: 'queued' | 'error') => void;
}

export interface PurchaseServiceDeps {
  idempotency: Pick<
    IdempotencyStore,
    'claimIdempotencyKey' | 'inspectClaim' | 'confirmClaim' | 'releaseClaim' | 'redirectClaim'
  >;
  states: Pick<PurchaseStateStore, 'getPurchaseState'>;
  payments: Pick<PaymentsRepository, 'findPayment'>;
  purchases: Pick<
    PurchasesRepository,
    'recordAccepted' | 'releaseAcceptedEvent' | 'findAccepted' | 'markAbandoned' | 'markQueued' | 'listAccepted'
  >;
  references: PurchaseReferencesLookup;
  producer: Pick<PurchaseProducer, 'enqueuePurchase'>;
  waiter: Pick<PurchaseOutcomeWaiter, 'waitForOutcome'>;
  logger: Logger;
  newPurchaseId?: () => string;
  now?: () => Date;
  /**
   * How long a duplicate waits for a claim that is still pending (claimed, not yet recorded and
   * enqueued) to be confirmed or given up, before it answers 503. Default 1.5 s.
   */
  pendingClaimWaitMs?: number;
  /** Latency of the claim and the enqueue. Default: none, and nothing is timed. */
  timings?: PurchaseTimings | undefined;
}

/** How often a duplicate waiting on a pending claim looks at it again. */
const PENDING_CLAIM_POLL_MS = 20;

/**
 * Accepting purchases: validate references, claim the idempotency key, record the purchase in
 * Postgres, enqueue, confirm the claim, and optionally wait for the outcome. A 202 is sent only
 * for a purchase Postgres holds; a 204 only for a confirmed claim, whose purchase Postgres holds
 * too. Every failure after the claim releases it (and the purchase is marked abandoned, so the
 * reconciler never completes it behind the client's back) or leaves a queued job behind it.
 */
export function createPurchaseService(deps: PurchaseServiceDeps) {
  const { idempotency, states, payments, purchases, references, producer, waiter, logger } = deps;
  const newPurchaseId = deps.newPurchaseId ?? randomUUID;
  const now = deps.now ?? (() => new Date());
  const pendingClaimWaitMs = deps.pendingClaimWaitMs ?? 1_500;
  const { timings } = deps;

  /** Same body -> the holder's purchase; different body -> 422. */
  function checkSameBody(holder: ClaimHolder, fingerprint: string): void {
    if (holder.existing.fingerprint !== fingerprint) {
      throw new AppError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was already used with a different request body',
      );
    }
  }

  /**
   * A duplicate of a claim that is still pending must not be pointed at a purchase that may
   * never exist: it waits (bounded) for the claim to be confirmed (a duplicate then), or given up
   * (released or expired: null, and the caller may claim the key itself).
   */
  async function settlePending(
    key: string,
    holder: ClaimHolder,
    fingerprint: string,
    deadline: number,
  ): Promise<string | null> {
    let current: ClaimHolder | null = holder;
    while (current && !current.confirmed) {
      if (Date.now() >= deadline) {
        throw new AppError(
          'IDEMPOTENCY_KEY_PENDING',
          'A purchase with this Idempotency-Key is still being accepted; retry shortly',
          {
            headers: { 'retry-after': '1' },
          },
        );
      }
      await sleep(PENDING_CLAIM_POLL_MS);
      current = await dependency('Redis', idempotency.inspectClaim(key));
      if (current) checkSameBody(current, fingerprint);
    }
    return current ? current.existing.purchaseId : null;
  }

  /** Whether a purchase accepted before accounts existed (no `purchases` row) is the account's: its user is. */
  async function ownedThroughUser(accountId: number, purchase: Purchase): Promise<boolean> {
    const { userExists } = await dependency(
      'Postgres',
      references.lookupPurchaseReferences(accountId, purchase.userId, purchase.productId),
    );
    return userExists;
  }

  /** The purchase as its account sees it; null when it does not exist or is another account's. */
  async function getPurchase(purchaseId: string, accountId: number): Promise<Purchase | null> {
    // Postgres's `payments` is the record of finished purchases and `purchases` of every one
    // ever accepted (with its account and the key it holds); the state store knows in-flight
    // ones (and outcomes `payments` could not take).
    const [payment, accepted] = await dependency(
      'Postgres',
      Promise.all([payments.findPayment(purchaseId), purchases.findAccepted(purchaseId)]),
    );
    if (accepted ? accepted.accountId !== accountId : !payment || !(await ownedThroughUser(accountId, payment))) {
      return null;
    }
    if (payment) return payment;
    if (!accepted) return null;
    return unpaid(accepted);
  }

  /** An accepted purchase that had no payment when Postgres was read, as its account sees it. */
  async function unpaid(accepted: AcceptedPurchase): Promise<Purchase> {
    const { purchaseId } = accepted.purchase;
    const { idempotencyKey } = accepted;
    const inFlight = await states.getPurchaseState({ purchaseId, idempotencyKey }).catch((error: unknown) => {
      // Postgres answers for it below, if less precisely (queued, never processing).
      logger.warn({ err: error, purchaseId }, 'could not read the in-flight record; answering from Postgres');
      return null;
    });
    if (inFlight) return inFlight;
    // The worker drops the in-flight record only after Postgres holds the payment, so a
    // purchase that finished between the reads above is in Postgres now.
    return (await dependency('Postgres', payments.findPayment(purchaseId))) ?? accepted.purchase;
  }

  /**
   * One page of the account's purchases, newest first, each as `getPurchase` gives it. Postgres
   * knows which have a payment; the others' statuses are resolved as a status read resolves
   * them, so a status filter reads candidates (unpaid ones, and for a final status the paid ones
   * with it) and keeps those that match, at most LIST_SCAN_MAX_ROWS rows a page.
   */
  async function listPurchases(request: PurchaseListRequest): Promise<PurchasePage> {
    const { accountId, userId, status, limit } = request;
    let after: { acceptedAt: Date; purchaseId: string } | undefined;
    if (request.startingAfter !== undefined) {
      const cursor = await dependency('Postgres', purchases.findAccepted(request.startingAfter));
      if (cursor?.accountId !== accountId) {
        throw new AppError('VALIDATION_FAILED', `starting_after: no purchase ${request.startingAfter} to list after`);
      }
      after = { acceptedAt: cursor.purchase.createdAt, purchaseId: request.startingAfter };
    }
    // An unpaid purchase may also have finished (an outcome `payments` could not take, or one
    // written since), so it is a candidate for every status.
    const paymentStatuses = status === undefined ? undefined : isFinal(status) ? [status, null] : [null];
    const chunk = status === undefined ? limit + 1 : Math.max(limit + 1, LIST_SCAN_CHUNK);
    const found: Purchase[] = [];
    for (let scanned = 0; ;) {
      const rows = await dependency(
        'Postgres',
        purchases.listAccepted({ accountId, userId, after, paymentStatuses, limit: chunk }),
      );
      const resolved = await Promise.all(rows.map(async (row) => row.payment ?? unpaid(row.accepted)));
      found.push(...resolved.filter((purchase) => status === undefined || purchase.status === status));
      scanned += rows.length;
      const last = rows.at(-1)?.accepted.purchase;
      if (found.length > limit) {
        const page = found.slice(0, limit);
        return { purchases: page, hasMore: true, nextStartingAfter: page.at(-1)!.purchaseId };
      }
      if (rows.length < chunk || !last) return { purchases: found, hasMore: false, nextStartingAfter: null };
      if (scanned >= LIST_SCAN_MAX_ROWS) return { purchases: found, hasMore: true, nextStartingAfter: last.purchaseId };
      after = { acceptedAt: last.createdAt, purchaseId: last.purchaseId };
    }
  }

  /** Claims `key` for a new purchase, or settles the submission as a duplicate. */
  async function claimOrDuplicate(
    key: string,
    fingerprint: string,
    state: Parameters<IdempotencyStore['claimIdempotencyKey']>[2],
    purchaseId: string,
  ): Promise<PurchaseSubmission | null> {
    // One deadline for the whole submission, however often a pending claim comes and goes.
    const deadline = Date.now() + pendingClaimWaitMs;
    for (;;) {
      const claim = await dependency(
        'Redis',
        timed(
          timings?.claim,
          () => idempotency.claimIdempotencyKey(key, { purchaseId, fingerprint }, state),
          (result) => (result.claimed ? 'claimed' : 'held'),
        ),
      );
      if (claim.claimed) return null;
      checkSameBody(claim, fingerprint);
      // A duplicate of a confirmed claim ends here, having cost one Redis round trip.
      const holder = claim.confirmed
        ? claim.existing.purchaseId
        : await settlePending(key, claim, fingerprint, deadline);
      if (holder) return { kind: 'duplicate', purchaseId: holder };
      // The pending claim was given up: this submission may take the key.
    }
  }

  async function submitPurchase(request: PurchaseRequest): Promise<PurchaseSubmission> {
    const { accountId, userId, productId } = request;
    // A user id is global and belongs to one account, which the lookup below checks: the key is
    // scoped to the account through its user.
    const key = idempotencyKeyFor({ userId, productId, headerKey: request.idempotencyKey });
    const fingerprint = purchaseFingerprint({ userId, productId });

    // Usually answered from memory; unknown ids, and another account's, are rejected before
    // anything is claimed.
    const { userExists, price } = await dependency(
      'Postgres',
      references.lookupPurchaseReferences(accountId, userId, productId),
    );
    if (!userExists) throw new AppError('USER_NOT_FOUND', `User ${userId} does not exist`);
    if (price === null) throw new AppError('PRODUCT_NOT_FOUND', `Product ${productId} does not exist`);

    const purchaseId = newPurchaseId();
    const acceptedAt = now().toISOString();
    const duplicate = await claimOrDuplicate(
      key,
      fingerprint,
      { userId, productId, amount: price, status: 'queued', createdAt: acceptedAt },
      purchaseId,
    );
    if (duplicate) return duplicate;

    const job: AccountPurchaseJob = {
      purchaseId,
      accountId,
      userId,
      productId,
      amount: price,
      idempotencyKey: key,
      acceptedAt,
    };
    // Listen before enqueueing so a fast worker cannot finish unseen. No wait either when every
    // waiting place is taken: the client then gets its 202 at once.
    const wait = request.wait
      ? waiter.waitForOutcome(purchaseId, request.wait, () => getPurchase(purchaseId, accountId))
      : null;

    // Durable before anything can run it: a purchase that got 202 outlives a Redis that lost
    // its data, and its status URL answers from Postgres.
    let recorded: RecordedAcceptance;
    try {
      recorded = await purchases.recordAccepted(job);
    } catch (error) {
      wait?.cancel();
      await giveUp(key, purchaseId, error, 'could not record the purchase');
      throw serviceUnavailable('Postgres', error);
    }

    let queuedPurchaseId: string;
    try {
      ({ queuedPurchaseId } = await timed(
        timings?.enqueue,
        () => producer.enqueuePurchase(job),
        () => 'queued',
      ));
    } catch (error) {
      wait?.cancel();
      await giveUp(key, purchaseId, error, 'enqueue failed');
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
      // Ours was recorded but never queued and never answered 202: not a purchase after all. The
      // one the queue holds may have been answered 503 (an enqueue whose reply was lost) and
      // marked abandoned: this answer points the client at it, so it is a purchase after all.
      await purchases.markAbandoned(purchaseId).catch((error: unknown) => {
        logger.warn({ err: error, purchaseId }, 'could not mark a folded purchase abandoned; the reconciler will');
      });
      await purchases.markQueued(queuedPurchaseId).catch((error: unknown) => {
        logger.warn({ err: error, purchaseId: queuedPurchaseId }, 'could not mark the queued purchase kept');
      });
      logger.info({ purchaseId, queuedPurchaseId }, 'collapsed into a pending purchase by the queue');
      return { kind: 'duplicate', purchaseId: queuedPurchaseId };
    }

    // The job is queued; a failure to confirm only shortens the claim's life, so it is logged
    // rather than turned into an error for a purchase that will be charged.
    await idempotency.confirmClaim(key, purchaseId).catch((error: unknown) => {
      logger.warn({ purchaseId, err: error }, 'could not extend the idempotency claim');
    });
    // Its `purchase.accepted` event was held until now: a purchase answered 503, or folded into
    // another, is never announced. Should this fail, the outcome's write releases it.
    if (recorded.heldEvent) {
      await purchases.releaseAcceptedEvent(purchaseId).catch((error: unknown) => {
        logger.warn({ purchaseId, err: error }, 'could not release the purchase.accepted event; its outcome will');
      });
    }
    logger.info({ purchaseId, userId, productId, amount: price }, 'purchase accepted');

    if (wait) {
      const purchase = await wait.outcome;
      if (purchase) return { kind: 'finished', purchase };
    }
    return { kind: 'accepted', purchaseId };
  }

  /**
   * Undoes an acceptance that will be answered 503: marks the purchase abandoned (if Postgres
   * holds it: the reconciler then fails it instead of completing it, unless its job did run) and
   * releases the claim so the client's retry can be accepted. If even the release fails, the
   * claim is still pending and expires within IDEMPOTENCY_PENDING_TTL_SECONDS.
   */
  async function giveUp(key: string, purchaseId: string, error: unknown, what: string): Promise<void> {
    const abandoned = await purchases.markAbandoned(purchaseId).then(
      () => true,
      () => false,
    );
    const released = await idempotency.releaseClaim(key, purchaseId).catch(() => false);
    logger.warn({ purchaseId, err: error, released, abandoned }, `${what}; claim released`);
  }

  return { submitPurchase, getPurchase, listPurchases };
}

export type PurchaseService = ReturnType<typeof createPurchaseService>;

/**
 * Runs `work`; when `observe` is given, reports the seconds it took and how it ended (`resultOf`
 * its value, or `error`). Without `observe` it only runs `work`.
 */
async function timed<T, R extends string>(
  observe: ((seconds: number, result: R | 'error') => void) | undefined,
  work: () => Promise<T>,
  resultOf: (value: T) => R,
): Promise<T> {
  if (!observe) return work();
  const started = performance.now();
  let result: R | 'error' = 'error';
  try {
    const value = await work();
    result = resultOf(value);
    return value;
  } finally {
    observe((performance.now() - started) / 1000, result);
  }
}

/** Turns an infrastructure failure into a 503; lets expected AppErrors through. */
async function dependency<T>(what: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    if (isAppError(error)) throw error;
    throw serviceUnavailable(what, error);
  }
}
