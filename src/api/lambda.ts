import awsLambdaFastify from '@fastify/aws-lambda';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { loadLambdaConfig } from '../shared/config.js';
import { oncePerContainer } from '../shared/lambda-container.js';
import { untilRedisReady } from '../shared/redis/connection.js';
import { withTimeout } from '../shared/timeout.js';
import { composeApi } from './composition-root.js';

/** How long a new container waits for Redis before serving anyway (requests then get 503). */
const CONNECT_WAIT_MS = 5_000;

/**
 * The API on AWS Lambda behind API Gateway HTTP API (payload format 2.0): the same Fastify app
 * as the server, driven through @fastify/aws-lambda. Clients are created once per container, on
 * its first invocation, and reused by every invocation after it.
 */
const container = oncePerContainer(async () => {
  const config = await loadLambdaConfig();
  const api = await composeApi(config);
  const proxy = awsLambdaFastify<APIGatewayProxyEventV2>(api.app, { decorateRequest: false });
  await api.app.ready();
  await untilRedisReady(api.clients.redis, CONNECT_WAIT_MS);
  // Subscribed before the first request, so `Prefer: wait` works from the start.
  await withTimeout(api.subscribe(), CONNECT_WAIT_MS, 'event subscription').catch((error: unknown) =>
    api.logger.warn({ err: error }, 'event subscription not ready; Prefer: wait falls back to 202'),
  );
  api.logger.info({ driver: config.QUEUE_DRIVER }, 'api container ready');
  return { proxy, close: api.close };
});

/** Lambda entry (`index.handler` in api.zip). */
export async function handler(event: APIGatewayProxyEventV2, context: Context) {
  const { proxy } = await container();
  return proxy(event, context);
}

/** Closes this container's clients; see `ContainerSetUp.close`. */
export const closeContainer = (): Promise<void> => container.close();
