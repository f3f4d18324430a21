import type { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Db } from '../../src/shared/db.js';
import { createQueue } from '../../src/shared/queue/bullmq-store.js';
import type { RedisClient } from '../../src/shared/redis/connection.js';
import { backendEnv, bullmqStoreOf, heldClaims, type HeldClaim, type StoreBackendName } from './backends.js';
import { startApi, startWorker, type RunningApi, type RunningProcess, type RunningWorker } from './processes.js';
import { useApiKey } from './purchase-client.js';
import { scanKeys, type RunningRedisCluster } from './redis-cluster.js';
import { createTestDatabase, deleteKeys, eventually, TEST_REDIS_URL, testConfig } from './services.js';

/** A `payments` row as the worker wrote it. */
export interface PaymentRow {
  id: string;
  user_id: number;
  product_id: number;
  amount: number;
  status: 'succeeded' | 'failed';
  failure_reason: string | null;
  idempotency_key: string;
}

/** BullMQ job counts of the stack's queue. */
export interface JobCounts {
  waiting: number;
  prioritized: number;
  delayed: number;
  active: number;
  completed: number;
  failed: number;
}

/**
 * One end-to-end test file's world: its own database, key prefix and queue name, and the built
 * API and worker processes it started (where `test/support/stack.ts` runs the app in-process).
 * `close()` stops those processes and removes the database and keys, whatever state the test
 * left them in.
 */
export interface ProcessStack {
  /** The store backend the processes run on (STORE_BACKEND). */
  backend: StoreBackendName;
  db: Db;
  /** The stack's own database, as the processes get it in DATABASE_URL. */
  databaseUrl: string;
  /** An API key of the database's account; purchase clients of this stack's APIs send it. */
  apiKey: string;
  prefix: string;
  queueName: string;
  /** Starts the API with this stack's environment plus `overrides` (LOG_LEVEL warn unless given). */
  /** The environment this stack gives its processes, with `overrides` over it (for scripts a test runs). */
  env(overrides?: Record<string, string>): Record<string, string>;
  startApi(overrides?: Record<string, string>): Promise<RunningApi>;
  /** Starts a worker with this stack's environment plus `overrides` (PAYMENT_DELAY_MS 0 unless given). */
  startWorker(overrides?: Record<string, string>): Promise<RunningWorker>;
  /** Rows of `payments`, optionally filtered (column names as in the table). */
  payments(where?: Partial<PaymentRow>): Promise<PaymentRow[]>;
  jobCounts(): Promise<JobCounts>;
  /** The job of this id in the stack's queue, in whatever state (undefined: there is none). */
  getJob(jobId: string): Promise<Job | undefined>;
  /** Waits until no job is waiting, delayed or running, and returns the counts. */
  queueDrained(timeoutMs?: number): Promise<JobCounts>;
  /** Redis keys under this stack's prefix matching `pattern` (after `<prefix>:`); none on the Postgres backend. */
  keys(pattern: string): Promise<string[]>;
  /** The idempotency keys held now (`user:<id>:…`), whichever backend holds them. */
  claims(): Promise<string[]>;
  /** The claims held now (only those of `keys`, when given), with their holder and remaining life (see `heldClaims`). */
  heldClaims(keys?: readonly string[]): Promise<HeldClaim[]>;
  close(): Promise<void>;
}

export interface ProcessStackOptions {
  /** The store backend (STORE_BACKEND) the processes run on. Default `redis`. */
  backend?: StoreBackendName;
  /** The Redis every process and helper uses (Redis backend). Default the shared test Redis. */
  redisUrl?: string;
  /** A Redis Cluster of the test's own for every process and helper instead (REDIS_CLUSTER=true). */
  redisCluster?: RunningRedisCluster;
}

/**
 * DATABASE_POOL_MAX of the stack's processes. On the Postgres backend it sizes two pools in each
 * process (knex's and BullMQ's, and a worker adds the gateway's, its reconciler's and LISTEN
 * connections), and two test files run at once against one server with max_connections 100.
 */
const POOL_MAX: Record<StoreBackendName, string> = { redis: '10', postgres: '5' };

/** Creates the database, prefix and queue name; processes start when the test asks. */
export async function createProcessStack(options: ProcessStackOptions = {}): Promise<ProcessStack> {
  const backend = options.backend ?? 'redis';
  const { redisCluster } = options;
  const redisUrl = redisCluster?.url ?? options.redisUrl ?? TEST_REDIS_URL;
  const redisEnv = { ...backendEnv(backend, redisUrl), ...redisCluster?.env };
  const database = await createTestDatabase();
  // testConfig validates the names the processes will get and draws the random ones.
  const config = testConfig({ DATABASE_URL: database.url, ...redisEnv });
  const prefix = config.REDIS_KEY_PREFIX;
  const queueName = config.QUEUE_NAME;
  const started: RunningProcess[] = [];
  let inspectorRedis: RedisClient | undefined;
  let inspectorQueue: Queue | undefined;
  /** A connection of the helpers' own, to the single Redis or the cluster. */
  const connectRedis = (maxRetriesPerRequest: number | null): RedisClient => {
    const redis = redisCluster?.connect({ maxRetriesPerRequest }) ?? new Redis(redisUrl, { maxRetriesPerRequest });
    redis.on('error', () => {});
    return redis;
  };

  const env = (overrides: Record<string, string> = {}): Record<string, string> => ({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    // Set, so a GATEWAY_DATABASE_URL in the developer's environment cannot leak into the test.
    GATEWAY_DATABASE_URL: database.url,
    DATABASE_POOL_MAX: POOL_MAX[backend],
    ...redisEnv,
    REDIS_KEY_PREFIX: prefix,
    QUEUE_NAME: queueName,
    PAYMENT_DELAY_MS: '0',
    PAYMENT_DECLINE_RATE: '0',
    // startWorker waits for the worker's "worker started" line, which is logged at info.
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...overrides,
  });

  /** The test's own Redis connection (Redis backend), for its queue inspector and claims. */
  function redisInspector(): RedisClient {
    inspectorRedis ??= connectRedis(null);
    return inspectorRedis;
  }

  function queueInspector(): Queue {
    inspectorQueue ??= createQueue(
      queueName,
      bullmqStoreOf(backend, { redis: redisInspector, prefix, databaseUrl: database.url }),
    );
    return inspectorQueue;
  }

  const claimsHeld = (keys?: readonly string[]) =>
    heldClaims(backend, { redis: redisInspector, prefix, db: database.db }, keys);

  async function jobCounts(): Promise<JobCounts> {
    const counts = await queueInspector().getJobCounts(
      'waiting',
      'prioritized',
      'delayed',
      'active',
      'completed',
      'failed',
    );
    return {
      waiting: counts.waiting ?? 0,
      prioritized: counts.prioritized ?? 0,
      delayed: counts.delayed ?? 0,
      active: counts.active ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
    };
  }

  async function keys(pattern: string): Promise<string[]> {
    if (backend === 'postgres') return [];
    const redis = connectRedis(1);
    try {
      return await scanKeys(redis, `${prefix}:${pattern}`);
    } finally {
      redis.disconnect();
    }
  }

  return {
    backend,
    db: database.db,
    databaseUrl: database.url,
    apiKey: database.account.apiKey,
    prefix,
    queueName,

    env,
    async startApi(overrides = {}) {
      // A generous Redis bound: see testConfig. Outage tests still get their 503 at once.
      const api = await startApi(env({ LOG_LEVEL: 'warn', REDIS_COMMAND_TIMEOUT_MS: '5000', ...overrides }));
      started.push(api);
      useApiKey(api.url, database.account.apiKey);
      return api;
    },

    async startWorker(overrides = {}) {
      const worker = await startWorker(env(overrides));
      started.push(worker);
      return worker;
    },

    async payments(where = {}) {
      return database.db<PaymentRow>('payments').where(where).orderBy('created_at');
    },

    jobCounts,

    async getJob(jobId) {
      return queueInspector().getJob(jobId);
    },

    async queueDrained(timeoutMs = 15_000) {
      return eventually(
        async () => {
          const counts = await jobCounts();
          return counts.waiting + counts.prioritized + counts.delayed + counts.active === 0 ? counts : undefined;
        },
        { timeoutMs, what: `queue ${queueName} to drain` },
      );
    },

    async claims() {
      return (await claimsHeld()).map((claim) => claim.key);
    },

    heldClaims: claimsHeld,

    keys,

    async close() {
      // Processes first (newest first), so nothing writes while the database and keys go away.
      const errors: unknown[] = [];
      for (const running of started.reverse()) {
        await running.stop('SIGTERM', 5_000).catch((error: unknown) => errors.push(error));
      }
      await inspectorQueue?.close().catch(() => {});
      inspectorRedis?.disconnect();
      await database.drop().catch((error: unknown) => errors.push(error));
      if (backend === 'redis' && redisUrl === TEST_REDIS_URL)
        await deleteKeys(prefix).catch((error: unknown) => errors.push(error));
      if (errors.length > 0) throw new AggregateError(errors, 'stack cleanup failed');
    },
  };
}
