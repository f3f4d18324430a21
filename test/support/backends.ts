import type { Redis } from 'ioredis';
import type { Db } from '../../src/shared/db.js';
import type { BullmqStore } from '../../src/shared/queue/bullmq-store.js';
import { bullmqPrefix, redisKeys } from '../../src/shared/redis/keys.js';

/** The store backends every behaviour test of the core pipeline runs against (STORE_BACKEND). */
export const STORE_BACKENDS = ['redis', 'postgres'] as const;
export type StoreBackendName = (typeof STORE_BACKENDS)[number];

/**
 * The environment that selects `backend` for a process or a `testConfig`: the Redis backend on
 * `redisUrl`, or the Postgres backend with no Redis at all (REDIS_URL emptied, which counts as unset).
 */
export function backendEnv(backend: StoreBackendName, redisUrl: string): Record<string, string> {
  return backend === 'redis'
    ? { STORE_BACKEND: 'redis', REDIS_URL: redisUrl }
    : { STORE_BACKEND: 'postgres', REDIS_URL: '' };
}

/** Where a test's processes keep their BullMQ queue, for a queue of the test's own that inspects it. */
export function bullmqStoreOf(
  backend: StoreBackendName,
  where: { redis: () => Redis; prefix: string; databaseUrl: string },
): BullmqStore {
  return backend === 'redis'
    ? { backend: 'redis', connection: where.redis(), prefix: bullmqPrefix(where.prefix) }
    : { backend: 'postgres', databaseUrl: where.databaseUrl, poolMax: 2 };
}

/** An idempotency claim held now, as a test reads it from whichever backend holds it. */
export interface HeldClaim {
  /** The idempotency key as the API builds it (`user:<id>:key:<header>`, see `idempotencyKeyFor`). */
  key: string;
  purchaseId: string;
  /** Confirmed (its purchase recorded and enqueued), or still pending. */
  confirmed: boolean;
  /** How long it still blocks its key: the Redis key's PTTL, or its row's `expires_at - now()`. */
  ttlMs: number;
}

/**
 * The idempotency claims held now (only those of `keys`, when given): on Redis the
 * `<prefix>:idem:<key>` keys (value "<purchaseId> <p|c> <fingerprint>") and their PTTL, on
 * Postgres the `idempotency_claims` rows whose `expires_at` is still ahead. An expired claim
 * is no claim on either backend, though its Postgres row stays until it is taken over or swept.
 */
export async function heldClaims(
  backend: StoreBackendName,
  where: { redis: () => Redis; prefix: string; db: Db },
  keys?: readonly string[],
): Promise<HeldClaim[]> {
  if (backend === 'postgres') {
    let query = where.db('idempotency_claims').where('expires_at', '>', where.db.fn.now());
    if (keys) query = query.whereIn('key', [...keys]);
    const rows = (await query.select(
      'key',
      'purchase_id',
      'confirmed',
      where.db.raw('extract(epoch from expires_at - now()) * 1000 as ttl_ms'),
    )) as Array<{ key: string; purchase_id: string; confirmed: boolean; ttl_ms: string }>;
    return rows.map((row) => ({
      key: row.key,
      purchaseId: row.purchase_id,
      confirmed: row.confirmed,
      ttlMs: Number(row.ttl_ms),
    }));
  }
  const redis = where.redis();
  const claimKey = redisKeys(where.prefix).claim;
  let names = keys?.map(claimKey);
  if (!names) {
    names = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', claimKey('*'), 'COUNT', 1000);
      cursor = next;
      names.push(...batch);
    } while (cursor !== '0');
  }
  const claims = await Promise.all(
    names.map(async (name): Promise<HeldClaim | null> => {
      const [value, ttlMs] = await Promise.all([redis.get(name), redis.pttl(name)]);
      // Gone meanwhile (expired, released).
      if (value === null || ttlMs === -2) return null;
      const [purchaseId, state] = value.split(' ');
      return {
        key: name.slice(claimKey('').length),
        purchaseId: purchaseId!,
        confirmed: state !== 'p',
        // A claim without a TTL (-1) would block its key for ever: visible as such, not hidden.
        ttlMs: ttlMs === -1 ? Infinity : ttlMs,
      };
    }),
  );
  return claims.filter((claim) => claim !== null);
}
