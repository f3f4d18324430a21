import type { Purchase, PurchaseStatus } from './purchase.js';

/** What names a purchase to the stores: its id, and the idempotency key it was accepted under. */
export interface PurchaseRef {
  purchaseId: string;
  /**
   * The key the purchase holds. The Redis backend keeps a purchase's records in the key's hash
   * slot (Redis Cluster), so it needs the key to find them; the Postgres backend needs only the id.
   */
  idempotencyKey: string;
}

/**
 * Announced when a purchase starts processing and when it reaches a final status: one
 * announcement per change, naming the purchase (listeners read the purchase itself).
 */
export interface PurchaseStatusEvent {
  purchaseId: string;
  status: PurchaseStatus;
}

/**
 * The in-flight view of purchases (`queued`, `processing`), the outcomes Postgres's `payments`
 * table could not take, and the announcement of every change of status. One implementation per store
 * backend: `src/shared/redis/purchase-state-store.ts`, `src/shared/postgres/purchase-state-store.ts`.
 * The `payments` table is the record of finished purchases; a state store only answers for
 * purchases it does not have.
 */
export interface PurchaseStateStore {
  /** The purchase as the store knows it while in flight (or its unrecorded outcome), or null. */
  getPurchaseState(ref: PurchaseRef): Promise<Purchase | null>;
  /**
   * Marks a queued purchase as processing and announces it; a no-op (nothing announced) for one
   * that is already further along.
   */
  markProcessing(ref: PurchaseRef): Promise<void>;
  /**
   * Announces a final outcome and lets the purchase's claim on `idempotencyKey` expire
   * IDEMPOTENCY_TTL_SECONDS from now, if the claim is still the purchase's own. With
   * `inPostgres: false`, when the outcome could not be written to `payments`, the store keeps it
   * as the purchase's only record (the reconciler writes it to `payments` later).
   */
  markFinished(purchase: Purchase, options: { idempotencyKey: string; inPostgres?: boolean }): Promise<void>;
}

/**
 * Where the API hears the worker's announcements (`Prefer: wait`, the events streams): Redis
 * pub/sub, or Postgres LISTEN/NOTIFY. Either may drop what is announced while it reconnects, so listeners also hear
 * of every reconnect and read what they wait for again.
 */
export interface PurchaseEventSource {
  /** Subscribes, waiting for the connection as long as it takes; resolves once subscribed. */
  start(): Promise<void>;
  /** Calls `listener` with each announcement's raw payload (a `PurchaseStatusEvent` as JSON). */
  onMessage(listener: (payload: string) => void): void;
  /** Calls `listener` after a reconnect has restored the subscription. */
  onResubscribed(listener: () => void): void;
  /** Stops calling the listeners, and closes the connection if the source made it. Idempotent. */
  close(): Promise<void>;
}
