import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApiServices } from '../../src/api/api-services.js';
import { buildApp } from '../../src/api/app.js';
import type { Config } from '../../src/shared/config.js';
import { purchaseProducerFromConfig } from '../../src/shared/queue/bullmq-purchase-producer.js';
import { bullmqPrefix } from '../../src/shared/redis/keys.js';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { createFailFastRedis, createPersistentRedis } from '../../src/shared/redis/connection.js';
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
  services: ReturnType<typeof createApiServices>;
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
  const redis = createFailFastRedis(config, logger, 'test-api');
  const subscriber = createPersistentRedis(config, logger, 'test-events');
  const inspector = new Redis(config.REDIS_URL);
  const realProducer = purchaseProducerFromConfig(config, redis);
  const producer = options.wrapProducer ? options.wrapProducer(realProducer) : realProducer;
  const services = createApiServices(config, { db: database.db, redis, subscriber, producer, logger });
  await services.waiter.start();
  const app = await buildApp({ ...services, fastify: { logger: false, bodyLimit: config.BODY_LIMIT_BYTES } });
  const queue = new Queue(config.QUEUE_NAME, { connection: inspector, prefix: bullmqPrefix(config.REDIS_KEY_PREFIX) });
  return {
    config,
    database,
    app,
    redis,
    inspector,
    queue,
    producer: realProducer,
    services,
    claimedKeys: () => inspector.keys(`${config.REDIS_KEY_PREFIX}:idem:*`),
    async close() {
      services.waiter.close();
      await app.close();
      await queue.close();
      await realProducer.close();
      subscriber.disconnect();
      redis.disconnect();
      await deleteKeys(config.REDIS_KEY_PREFIX, config.REDIS_URL);
      inspector.disconnect();
      await database.drop();
    },
  };
}
