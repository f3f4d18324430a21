import type { Processor } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../src/shared/config.js';
import { createWorker, type BullmqStore } from '../src/shared/queue/bullmq-store.js';
import { bullmqPrefix } from '../src/shared/redis/keys.js';

/**
 * Where a bench baseline process keeps payonce's queue, as payonce's own processes do on the
 * configured STORE_BACKEND: on Redis, one connection (also `redis`, for a baseline's own
 * commands) under the key prefix; on Postgres, BullMQ's PostgreSQL backend with pools of
 * DATABASE_POOL_MAX. `close()` closes the Redis connection, after the queue's users are closed.
 */
export function openBaselineStore(config: Config): {
  store: BullmqStore;
  redis: Redis | undefined;
  close: () => Promise<unknown>;
} {
  if (config.STORE_BACKEND === 'postgres') {
    const store: BullmqStore = {
      backend: 'postgres',
      databaseUrl: config.DATABASE_URL,
      poolMax: config.DATABASE_POOL_MAX,
    };
    return { store, redis: undefined, close: async () => {} };
  }
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  redis.on('error', () => {});
  return {
    store: { backend: 'redis', connection: redis, prefix: bullmqPrefix(config.REDIS_KEY_PREFIX) },
    redis,
    close: () => redis.quit(),
  };
}

/**
 * Runs a BullMQ worker on payonce's queue with `processor`, at WORKER_CONCURRENCY, on the
 * configured backend, and prints "worker started" once it is ready (the bench waits for that
 * line). On SIGTERM it finishes its jobs, runs `close` and exits. The bench's worker baselines
 * differ only in `processor`.
 */
export async function serveBullmqWorker(
  config: Config,
  processor: Processor,
  close: () => Promise<unknown> = async () => {},
): Promise<void> {
  const baseline = openBaselineStore(config);
  const worker = createWorker(config.QUEUE_NAME, processor, baseline.store, { concurrency: config.WORKER_CONCURRENCY });
  worker.on('error', () => {});
  await worker.waitUntilReady();
  console.log('worker started');
  process.on(
    'SIGTERM',
    () =>
      void worker
        .close()
        .then(baseline.close)
        .then(close)
        .then(() => process.exit(0)),
  );
}
