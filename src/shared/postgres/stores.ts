import type { Config } from '../config.js';
import type { Db } from '../db.js';
import type { Resources } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { RETENTION_SECONDS } from '../purchase/purchase.js';
import type { PurchaseStores } from '../purchase/purchase-stores.js';
import { createPostgresIdempotencyStore } from './idempotency-store.js';
import { createPostgresPurchaseEvents } from './purchase-events.js';
import { createPostgresPurchaseStateStore } from './purchase-state-store.js';
import { createPostgresRateCounter } from './rate-counter.js';

/**
 * The Postgres backend: no Redis at all. Claims and in-flight state in payonce's own tables (over
 * the process's knex pool `db`), announcements by LISTEN/NOTIFY, and the queue on BullMQ's
 * PostgreSQL backend in the same database.
 */
export function openPostgresStores(
  config: Config,
  { db, logger, resources }: { db: Db; logger: Logger; resources: Resources },
): PurchaseStores {
  const idempotency = createPostgresIdempotencyStore({
    db,
    unfinishedTtlSeconds: RETENTION_SECONDS,
    pendingTtlSeconds: config.IDEMPOTENCY_PENDING_TTL_SECONDS,
  });
  const rateCounter = createPostgresRateCounter({ db });
  return {
    idempotency,
    states: createPostgresPurchaseStateStore({ db, claimTtlSeconds: config.IDEMPOTENCY_TTL_SECONDS }),
    bullmq: { backend: 'postgres', databaseUrl: config.DATABASE_URL, poolMax: config.DATABASE_POOL_MAX },
    // Postgres is every process's own dependency, checked by the caller; there is nothing else.
    readinessChecks: [],
    openEvents() {
      return resources.own(
        'postgres events',
        createPostgresPurchaseEvents({ databaseUrl: config.DATABASE_URL, logger }),
        (events) => events.close(),
      );
    },
    rateCounter,
    async sweepExpired() {
      await idempotency.sweepExpired();
      await rateCounter.sweepExpired();
    },
  };
}
