import awsLambdaFastify from '@fastify/aws-lambda';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { createDb } from '../shared/db.js';
import { loadLambdaConfig } from '../shared/config.js';
import { oncePerContainer } from '../shared/lambda-container.js';
import { createLogger } from '../shared/logger.js';
import { createPurchaseProducer } from '../shared/queue/create-purchase-producer.js';
import { closeRedis, createFailFastRedis, createPersistentRedis, untilRedisReady } from '../shared/redis/connection.js';
import { withTimeout } from '../shared/timeout.js';
import { createApiServices } from './api-services.js';
import { buildApp } from './app.js';

/** How long a new container waits for Redis before serving anyway (requests then get 503). */
const CONNECT_WAIT_MS = 5_000;

/**
 * The API on AWS Lambda behind API Gateway HTTP API (payload format 2.0): the same Fastify app
 * as the server, driven through @fastify/aws-lambda. Clients are created once per container, on
 * its first invocation, and reused by every invocation after it.
 */
const container = oncePerContainer(async () => {
  const config = await loadLambdaConfig();
  const logger = createLogger(config, 'payonce-api');
  const db = createDb(config);
  const redis = createFailFastRedis(config, logger, 'api');
  const subscriber = createPersistentRedis(config, logger, 'api-events');
  const producer = await createPurchaseProducer(config, { redis });
  const services = createApiServices(config, { db, redis, subscriber, producer, logger });
  const app = await buildApp({
    ...services,
    fastify: { loggerInstance: logger, bodyLimit: config.BODY_LIMIT_BYTES },
  });
  const proxy = awsLambdaFastify<APIGatewayProxyEventV2>(app, { decorateRequest: false });
  await app.ready();
  await untilRedisReady(redis, CONNECT_WAIT_MS);
  // Subscribed before the first request, so `Prefer: wait` works from the start.
  await withTimeout(services.waiter.start(), CONNECT_WAIT_MS, 'event subscription').catch((error: unknown) =>
    logger.warn({ err: error }, 'event subscription not ready; Prefer: wait falls back to 202'),
  );
  logger.info({ driver: config.QUEUE_DRIVER }, 'api container ready');

  async function close(): Promise<void> {
    services.waiter.close();
    await app.close();
    await producer.close();
    await closeRedis(subscriber);
    await closeRedis(redis);
    await db.destroy();
  }
  return { proxy, close };
});

/** Lambda entry (`index.handler` in api.zip). */
export async function handler(event: APIGatewayProxyEventV2, context: Context) {
  const { proxy } = await container();
  return proxy(event, context);
}

/** Closes this container's clients; see `ContainerSetUp.close`. */
export const closeContainer = (): Promise<void> => container.close();
