import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { composeApi, type ApiRoot } from '../../src/api/composition-root.js';
import type { Config } from '../../src/shared/config.js';
import { createQueue } from '../../src/shared/queue/bullmq-store.js';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { backendEnv, bullmqStoreOf, type StoreBackendName } from './backends.js';
import { createTestDatabase, deleteKeys, TEST_REDIS_URL, testConfig, type TestDatabase } from './services.js';

export interface TestStack {
  backend: StoreBackendName;
  config: Config;
  database: TestDatabase;
  app: FastifyInstance;
  /** The API's fail-fast Redis connection (the producer's too); Redis backend only. */
  redis: Redis | undefined;
  /** A plain Redis connection for inspecting keys; Redis backend only (throws otherwise). */
  inspector: Redis;
  /** The real BullMQ queue the API enqueues to, for inspecting jobs. */
  queue: Queue;
  producer: PurchaseProducer;
  /** The API's composition root, as the server entry makes it. */
  root: ApiRoot;
  /** The environment of a worker process on this stack's database, backend, prefix and queue (LOG_LEVEL info, PAYMENT_DELAY_MS 0). */
  workerEnv(overrides?: Record<string, string>): Record<string, string>;
  /** The idempotency keys claimed now (as the API builds them, `user:<id>:…`), whichever backend holds them. */
  claimedKeys(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The API as the server entry wires it (real Postgres, and Redis or not as `backend` says, with
 * the real BullMQ), in-process for `app.inject`. `wrapProducer` lets a fault test put a failing
 * step in front of the real queue.
 */
export async function createTestStack(
  options: {
    backend?: StoreBackendName;
    env?: Record<string, string>;
    wrapProducer?: (producer: PurchaseProducer) => PurchaseProducer;
    /** The API's logger. Default: silent. */
    logger?: Logger;
  } = {},
): Promise<TestStack> {
  const backend = options.backend ?? 'redis';
  const database = await createTestDatabase();
  const config = testConfig({ DATABASE_URL: database.url, ...backendEnv(backend, TEST_REDIS_URL), ...options.env });
  const logger = options.logger ?? pino({ level: 'silent' });
  const root = await composeApi(config, { logger, wrapProducer: options.wrapProducer });
  await root.subscribe();
  const { app } = root;
  const { redis, producer } = root.clients;
  const prefix = config.REDIS_KEY_PREFIX;
  // The Redis the API uses: the tests' own, or one a test started (`env.REDIS_URL`).
  const redisUrl = config.REDIS_URL ?? TEST_REDIS_URL;
  let inspector: Redis | undefined;
  const redisInspector = () => {
    if (backend !== 'redis') throw new Error('this stack runs on the Postgres backend: it has no Redis');
    inspector ??= new Redis(redisUrl);
    return inspector;
  };
  const queue = createQueue(
    config.QUEUE_NAME,
    bullmqStoreOf(backend, { redis: redisInspector, prefix, databaseUrl: database.url }),
  );
  return {
    backend,
    config,
    database,
    app,
    redis,
    get inspector() {
      return redisInspector();
    },
    queue,
    producer,
    root,
    workerEnv: (overrides = {}) => ({
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATABASE_URL: config.DATABASE_URL,
      ...backendEnv(backend, redisUrl),
      REDIS_KEY_PREFIX: prefix,
      QUEUE_NAME: config.QUEUE_NAME,
      PAYMENT_DELAY_MS: '0',
      ...overrides,
    }),
    async claimedKeys() {
      if (backend === 'redis') {
        const keys = await redisInspector().keys(`${prefix}:idem:*`);
        return keys.map((key) => key.slice(`${prefix}:idem:`.length));
      }
      const rows = (await database
        .db('idempotency_claims')
        .where('expires_at', '>', database.db.fn.now())
        .select('key')) as Array<{ key: string }>;
      return rows.map((row) => row.key);
    },
    async close() {
      await root.close();
      await queue.close();
      if (backend === 'redis') await deleteKeys(prefix, redisUrl);
      inspector?.disconnect();
      await database.drop();
    },
  };
}
