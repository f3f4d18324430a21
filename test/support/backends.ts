import type { BullmqStore } from '../../src/shared/queue/bullmq-store.js';
import type { RedisClient } from '../../src/shared/redis/connection.js';
import { bullmqPrefix } from '../../src/shared/redis/keys.js';

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
