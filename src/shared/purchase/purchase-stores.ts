import type { BullmqStore } from '../queue/bullmq-store.js';
import type { RateCounter } from '../rate-counter.js';
import type { RedisClient } from '../redis/connection.js';
import type { IdempotencyStore } from './idempotency.js';
import type { PurchaseEventSource, PurchaseStateStore } from './purchase-states.js';

/**
 * What a process keeps its purchases' transient state in, behind one shape whichever backend
 * STORE_BACKEND chose: `src/shared/redis/` or `src/shared/postgres/` (one folder per backend).
 */
export interface PurchaseStores {
  idempotency: IdempotencyStore;
  states: PurchaseStateStore;
  /** Where BullMQ keeps the purchase queue. */
  bullmq: BullmqStore;
  /** The Redis connection, on the Redis backend only (the SQS producer keeps its records there). */
  redis?: RedisClient;
  /** What /health/ready checks besides Postgres. */
  readinessChecks: Array<{ name: string; check: () => Promise<unknown> }>;
  /** Opens the announcements (`Prefer: wait`), on a connection of their own; closed with the process's resources. */
  openEvents(): PurchaseEventSource;
  /** The API rate limiter's counters, shared by every API process. */
  rateCounter: RateCounter;
  /**
   * Deletes long-expired claims and rate counters, where nothing expires them by itself
   * (Postgres); the worker runs it with every reconciliation.
   */
  sweepExpired?(): Promise<void>;
}
