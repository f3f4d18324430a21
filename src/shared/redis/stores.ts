import type { Config } from '../config.js';
import type { Resources } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { RETENTION_SECONDS } from '../purchase/purchase.js';
import type { PurchaseStores } from '../purchase/purchase-stores.js';
import { closeRedis, createFailFastRedis, createPersistentRedis } from './connection.js';
import { createRedisIdempotencyStore } from './idempotency-store.js';
import { redisKeys } from './keys.js';
import { createRedisPurchaseEvents } from './purchase-events.js';
import { createRedisPurchaseStateStore } from './purchase-state-store.js';
import { createRedisRateCounter } from './rate-counter.js';

/**
 * The Redis backend: claims, in-flight records and announcements in Redis, and BullMQ's queue in
 * the same Redis, a single one or a Redis Cluster (REDIS_CLUSTER). The API's connection fails
 * fast (a Redis outage is a quick 503); the worker's waits out reconnects, as BullMQ's
 * production guide requires.
 */
export function openRedisStores(
  config: Extract<Config, { STORE_BACKEND: 'redis' }>,
  { logger, resources, role }: { logger: Logger; resources: Resources; role: 'api' | 'worker' },
): PurchaseStores {
  const open = role === 'api' ? createFailFastRedis : createPersistentRedis;
  const redis = resources.own('redis', open(config, logger, role), closeRedis);
  const prefix = config.REDIS_KEY_PREFIX;
  // REDIS_CLUSTER picks the client, and the client the key layout (hash tags on a cluster).
  const keys = redisKeys(prefix, { cluster: redis.isCluster });
  return {
    idempotency: createRedisIdempotencyStore({
      redis,
      prefix,
      // The worker shortens the claim to IDEMPOTENCY_TTL_SECONDS once the outcome is known.
      unfinishedTtlSeconds: RETENTION_SECONDS,
      stateTtlSeconds: RETENTION_SECONDS,
      pendingTtlSeconds: config.IDEMPOTENCY_PENDING_TTL_SECONDS,
    }),
    states: createRedisPurchaseStateStore({ redis, prefix, claimTtlSeconds: config.IDEMPOTENCY_TTL_SECONDS }),
    bullmq: { backend: 'redis', connection: redis, prefix: keys.bullmq },
    redis,
    rateCounter: createRedisRateCounter({ redis, prefix }),
    readinessChecks: [{ name: 'redis', check: () => redis.ping() }],
    openEvents() {
      // A connection of its own: once subscribed it can run nothing else.
      const subscriber = resources.own(
        'redis events',
        createPersistentRedis(config, logger, `${role}-events`),
        closeRedis,
      );
      return createRedisPurchaseEvents(subscriber, keys.purchaseEvents);
    },
  };
}
