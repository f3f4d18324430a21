import type { PurchaseStatus } from './purchase.js';

/**
 * The idempotency key of a purchase. An `Idempotency-Key` header is scoped to the user, so two
 * users can never collide; without one, the key is derived from (user, product): one purchase of
 * a product per user per TTL window.
 */
export function idempotencyKeyFor(input: {
  userId: number;
  productId: number;
  headerKey?: string | undefined;
}): string {
  return input.headerKey === undefined
    ? `user:${input.userId}:product:${input.productId}`
    : `user:${input.userId}:key:${input.headerKey}`;
}

/** What the body of a purchase must match for a replay under the same key to be a duplicate. */
export function purchaseFingerprint(input: { userId: number; productId: number }): string {
  return `${input.userId}/${input.productId}`;
}

export interface Claim {
  purchaseId: string;
  fingerprint: string;
}

/**
 * Who holds a key. A holder is `confirmed` once its purchase is recorded and enqueued; until
 * then its purchase may still be released, so a duplicate must not yet be pointed at it.
 */
export interface ClaimHolder {
  existing: Claim;
  confirmed: boolean;
}

export type ClaimResult = { claimed: true } | ({ claimed: false } & ClaimHolder);

/** The fields of the in-flight purchase record created together with the claim. */
export interface ClaimedPurchaseState {
  userId: number;
  productId: number;
  amount: number;
  status: PurchaseStatus;
  createdAt: string;
}

/**
 * Where idempotency claims live (Redis: src/shared/redis/idempotency-store.ts). A claim is taken
 * with a short pending TTL, confirmed (extended to the full TTL) once its job is enqueued, and
 * released if the enqueue failed.
 */
export interface IdempotencyStore {
  /** The current holder of `key`, if any (for inspection; the claim itself reports holders). */
  findClaim(key: string): Promise<Claim | null>;
  /** Whether `key` is held, and by whom, confirmed or not: for a duplicate waiting on a pending claim. */
  inspectClaim(key: string): Promise<ClaimHolder | null>;
  /**
   * Claims `key` for a new purchase and creates its `queued` record, atomically; or reports who
   * holds it. Exactly one of any number of concurrent claims of one key succeeds.
   */
  claimIdempotencyKey(key: string, claim: Claim, state: ClaimedPurchaseState): Promise<ClaimResult>;
  /** Extends a claim to the full TTL once its job is safely enqueued. */
  confirmClaim(key: string, purchaseId: string): Promise<boolean>;
  /** Gives a claim back (and drops its record) if it still belongs to `purchaseId`. */
  releaseClaim(key: string, purchaseId: string): Promise<boolean>;
  /**
   * Points a claim at another purchase that already holds the queue slot for this key (the
   * queue collapsed our job into it), dropping our never-queued record.
   */
  redirectClaim(key: string, from: string, to: Claim): Promise<boolean>;
}
