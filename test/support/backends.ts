import type { Db } from '../../src/shared/db.js';
import type { BullmqStore } from '../../src/shared/queue/bullmq-store.js';
import type { RedisClient } from '../../src/shared/redis/connection.js';
import { bullmqPrefix, redisKeys } from '../../src/shared/redis/keys.js';
import { scanKeys } from './redis-cluster.js';

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

/**
 * Where a test's processes keep their BullMQ queue, for a queue of the test's own that inspects
 * it; on a Redis Cluster client, under the cluster's hash-tagged prefix, as the processes use.
 */
export function bullmqStoreOf(
  backend: StoreBackendName,
  where: { redis: () => RedisClient; prefix: string; databaseUrl: string },
): BullmqStore {
  if (backend === 'postgres') return { backend: 'postgres', databaseUrl: where.databaseUrl, poolMax: 2 };
  const connection = where.redis();
  return { backend: 'redis', connection, prefix: bullmqPrefix(where.prefix, { cluster: connection.isCluster }) };
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
 * `<prefix>:idem:<key>` keys (hash-tagged on a cluster, every master scanned) (value "<purchaseId> <p|c> <fingerprint>") and their PTTL, on
 * Postgres the `idempotency_claims` rows whose `expires_at` is still ahead. An expired claim
 * is no claim on either backend, though its Postgres row stays until it is taken over or swept.
 */
export async function heldClaims(
  backend: StoreBackendName,
  where: { redis: () => RedisClient; prefix: string; db: Db },
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
  const layout = redisKeys(where.prefix, { cluster: redis.isCluster });
  const names = keys?.map(layout.claim) ?? (await scanKeys(redis, `${where.prefix}:idem:*`));
  const claims = await Promise.all(
    names.map(async (name): Promise<HeldClaim | null> => {
      const [value, ttlMs] = await Promise.all([redis.get(name), redis.pttl(name)]);
      // Gone meanwhile (expired, released).
      if (value === null || ttlMs === -2) return null;
      const [purchaseId, state] = value.split(' ');
      return {
        key: layout.idempotencyKeyOf(name),
        purchaseId: purchaseId!,
        confirmed: state !== 'p',
        // A claim without a TTL (-1) would block its key for ever: visible as such, not hidden.
        ttlMs: ttlMs === -1 ? Infinity : ttlMs,
      };
    }),
  );
  return claims.filter((claim) => claim !== null);
}
