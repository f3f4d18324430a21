import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { composeApi, type ApiRoot } from '../../src/api/composition-root.js';
import type { Config } from '../../src/shared/config.js';
import { bullmqPrefix } from '../../src/shared/redis/keys.js';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { createTestDatabase, deleteKeys, testConfig, type TestDatabase } from './services.js';

export interface TestStack {
  config: Config;
  database: TestDatabase;
  app: FastifyInstance;
  /** The API's fail-fast connection (the producer's too). */
  redis: Redis;
  /** A plain connection for inspecting keys. */
  inspector: Redis;
  /** The real BullMQ queue the API enqueues to, for inspecting jobs. */
  queue: Queue;
  producer: PurchaseProducer;
  /** The API's composition root, as the server entry makes it. */
  root: ApiRoot;
  /** Keys claimed under this stack's prefix. */
  claimedKeys(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The API as the server entry wires it (real Postgres, Redis and BullMQ), in-process for
 * `app.inject`. `wrapProducer` lets a fault test put a failing step in front of the real queue.
 */
export async function createTestStack(
  options: {
    env?: Record<string, string>;
    wrapProducer?: (producer: PurchaseProducer) => PurchaseProducer;
  } = {},
): Promise<TestStack> {
  const database = await createTestDatabase();
  const config = testConfig({ DATABASE_URL: database.url, ...options.env });
  const logger = pino({ level: 'silent' });
  const root = await composeApi(config, { logger, wrapProducer: options.wrapProducer });
  await root.subscribe();
  const { app } = root;
  const { redis, producer } = root.clients;
  const inspector = new Redis(config.REDIS_URL);
  const queue = new Queue(config.QUEUE_NAME, { connection: inspector, prefix: bullmqPrefix(config.REDIS_KEY_PREFIX) });
  return {
    config,
    database,
    app,
    redis,
    inspector,
    queue,
    producer,
    root,
    claimedKeys: () => inspector.keys(`${config.REDIS_KEY_PREFIX}:idem:*`),
    async close() {
      await root.close();
      await queue.close();
      await deleteKeys(config.REDIS_KEY_PREFIX, config.REDIS_URL);
      inspector.disconnect();
      await database.drop();
    },
  };
}
