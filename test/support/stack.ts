import type { Queue } from 'bullmq';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import type { RedisClient } from '../../src/shared/redis/connection.js';
import { pino, type Logger } from 'pino';
import { composeApi, type ApiRoot } from '../../src/api/composition-root.js';
import type { Config } from '../../src/shared/config.js';
import { createQueue } from '../../src/shared/queue/bullmq-store.js';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { backendEnv, bullmqStoreOf, heldClaims, type HeldClaim, type StoreBackendName } from './backends.js';
import { createTestDatabase, deleteKeys, TEST_REDIS_URL, testConfig, type TestDatabase } from './services.js';

export interface TestStack {
  backend: StoreBackendName;
  config: Config;
  database: TestDatabase;
  app: FastifyInstance;
  /** The API's fail-fast Redis connection (the producer's too); Redis backend only. */
  redis: RedisClient | undefined;
  /** A plain Redis connection for inspecting keys; Redis backend only (throws otherwise). */
  inspector: Redis;
  /** The real BullMQ queue the API enqueues to, for inspecting jobs. */
  queue: Queue;
  producer: PurchaseProducer;
  /** The API's composition root, as the server entry makes it. */
  root: ApiRoot;
  /** An API key of the test database's account; `app.inject` sends it unless a request sets `authorization` itself. */
  apiKey: string;
  /** The environment of a worker process on this stack's database, backend, prefix and queue (LOG_LEVEL info, PAYMENT_DELAY_MS 0). */
  workerEnv(overrides?: Record<string, string>): Record<string, string>;
  /** The idempotency keys claimed now (as the API builds them, `user:<id>:…`), whichever backend holds them. */
  claimedKeys(): Promise<string[]>;
  /** The claims held now (only those of `keys`, when given), with their holder and remaining life (see `heldClaims`). */
  heldClaims(keys?: readonly string[]): Promise<HeldClaim[]>;
  /** Closes the app and removes its keys and database (`keepDatabase`: leaves the database to its owner). */
  close(options?: { keepDatabase?: boolean }): Promise<void>;
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
    /** Another stack's database, for a second API process on the same data (it stays that stack's to drop). */
    database?: TestDatabase;
    wrapProducer?: (producer: PurchaseProducer) => PurchaseProducer;
    /** The API's logger. Default: silent. */
    logger?: Logger;
  } = {},
): Promise<TestStack> {
  const backend = options.backend ?? 'redis';
  const database = options.database ?? (await createTestDatabase());
  const config = testConfig({ DATABASE_URL: database.url, ...backendEnv(backend, TEST_REDIS_URL), ...options.env });
  const logger = options.logger ?? pino({ level: 'silent' });
  const root = await composeApi(config, { logger, wrapProducer: options.wrapProducer });
  await root.subscribe();
  const { app } = root;
  // Every injected request is authenticated as the database's account unless it says otherwise
  // (a test of the key check sets `authorization`, empty to send none).
  const inject = app.inject.bind(app);
  const authorization = `Bearer ${database.account.apiKey}`;
  app.inject = ((options: InjectOptions | string) => {
    const request = typeof options === 'string' ? { url: options } : options;
    const headers = { authorization, ...(request.headers as Record<string, string> | undefined) };
    if (headers.authorization === '') delete (headers as Partial<typeof headers>).authorization;
    return inject({ ...request, headers });
  }) as typeof app.inject;
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
  const claimsHeld = (keys?: readonly string[]) =>
    heldClaims(backend, { redis: redisInspector, prefix, db: database.db }, keys);
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
    apiKey: database.account.apiKey,
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
      return (await claimsHeld()).map((claim) => claim.key);
    },
    heldClaims: claimsHeld,
    async close({ keepDatabase = false } = {}) {
      await root.close();
      await queue.close();
      inspector?.disconnect();
      if (keepDatabase) return;
      if (backend === 'redis') await deleteKeys(prefix, redisUrl);
      await database.drop();
    },
  };
}
