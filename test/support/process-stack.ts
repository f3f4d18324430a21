import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Db } from '../../src/shared/db.js';
import { createQueue } from '../../src/shared/queue/bullmq-store.js';
import { backendEnv, bullmqStoreOf, type StoreBackendName } from './backends.js';
import { startApi, startWorker, type RunningApi, type RunningProcess, type RunningWorker } from './processes.js';
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
  /** Waits until no job is waiting, delayed or running, and returns the counts. */
  queueDrained(timeoutMs?: number): Promise<JobCounts>;
  /** Redis keys under this stack's prefix matching `pattern` (after `<prefix>:`); none on the Postgres backend. */
  keys(pattern: string): Promise<string[]>;
  /** The idempotency keys held now (`user:<id>:…`), whichever backend holds them. */
  claims(): Promise<string[]>;
  close(): Promise<void>;
}

export interface ProcessStackOptions {
  /** The store backend (STORE_BACKEND) the processes run on. Default `redis`. */
  backend?: StoreBackendName;
  /** The Redis every process and helper uses (Redis backend). Default the shared test Redis. */
  redisUrl?: string;
}

/** Creates the database, prefix and queue name; processes start when the test asks. */
export async function createProcessStack(options: ProcessStackOptions = {}): Promise<ProcessStack> {
  const backend = options.backend ?? 'redis';
  const redisUrl = options.redisUrl ?? TEST_REDIS_URL;
  const database = await createTestDatabase();
  // testConfig validates the names the processes will get and draws the random ones.
  const config = testConfig({ DATABASE_URL: database.url, ...backendEnv(backend, redisUrl) });
  const prefix = config.REDIS_KEY_PREFIX;
  const queueName = config.QUEUE_NAME;
  const started: RunningProcess[] = [];
  let inspector: { redis?: Redis; queue: Queue } | undefined;

  const env = (overrides: Record<string, string> = {}): Record<string, string> => ({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    // Set, so a GATEWAY_DATABASE_URL in the developer's environment cannot leak into the test.
    GATEWAY_DATABASE_URL: database.url,
    DATABASE_POOL_MAX: '10',
    ...backendEnv(backend, redisUrl),
    REDIS_KEY_PREFIX: prefix,
    QUEUE_NAME: queueName,
    PAYMENT_DELAY_MS: '0',
    PAYMENT_DECLINE_RATE: '0',
    // startWorker waits for the worker's "worker started" line, which is logged at info.
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...overrides,
  });

  function queueInspector(): Queue {
    if (!inspector) {
      let redis: Redis | undefined;
      const connect = () => {
        redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
        redis.on('error', () => {});
        return redis;
      };
      const queue = createQueue(
        queueName,
        bullmqStoreOf(backend, { redis: connect, prefix, databaseUrl: database.url }),
      );
      inspector = { redis, queue };
    }
    return inspector.queue;
  }

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
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:${pattern}`, 'COUNT', 1000);
        cursor = next;
        found.push(...batch);
      } while (cursor !== '0');
      return found;
    } finally {
      redis.disconnect();
    }
  }

  return {
    backend,
    db: database.db,
    databaseUrl: database.url,
    prefix,
    queueName,

    env,
    async startApi(overrides = {}) {
      // A generous Redis bound: see testConfig. Outage tests still get their 503 at once.
      const api = await startApi(env({ LOG_LEVEL: 'warn', REDIS_COMMAND_TIMEOUT_MS: '5000', ...overrides }));
      started.push(api);
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
      if (backend === 'postgres') {
        const rows = (await database
          .db('idempotency_claims')
          .where('expires_at', '>', database.db.fn.now())
          .select('key')) as Array<{ key: string }>;
        return rows.map((row) => row.key);
      }
      return (await keys('idem:*')).map((key) => key.slice(`${prefix}:idem:`.length));
    },

    keys,

    async close() {
      // Processes first (newest first), so nothing writes while the database and keys go away.
      const errors: unknown[] = [];
      for (const running of started.reverse()) {
        await running.stop('SIGTERM', 5_000).catch((error: unknown) => errors.push(error));
      }
      if (inspector) {
        await inspector.queue.close().catch(() => {});
        inspector.redis?.disconnect();
      }
      await database.drop().catch((error: unknown) => errors.push(error));
      if (backend === 'redis' && redisUrl === TEST_REDIS_URL)
        await deleteKeys(prefix).catch((error: unknown) => errors.push(error));
      if (errors.length > 0) throw new AggregateError(errors, 'stack cleanup failed');
    },
  };
}
