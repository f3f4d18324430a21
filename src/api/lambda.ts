import awsLambdaFastify from '@fastify/aws-lambda';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { FastifyRequest } from 'fastify';
import { loadLambdaConfig } from '../shared/config.js';
import { oncePerContainer } from '../shared/lambda-container.js';
import { untilRedisReady } from '../shared/redis/connection.js';
import { withTimeout } from '../shared/timeout.js';
import { composeApi } from './composition-root.js';

/** How long a new container waits for Redis before serving anyway (requests then get 503). */
const CONNECT_WAIT_MS = 5_000;

/**
 * The longest `Prefer: wait` here: API Gateway HTTP APIs end an integration 30 s after they
 * received the request, and the wait counts from then, a cold start included.
 */
export const LAMBDA_MAX_WAIT_SECONDS = 25;

/** Kept back from the invocation's own timeout (`api_timeout_seconds` may be under 30) to send the answer. */
const ANSWER_MARGIN_MS = 1_000;

/** When API Gateway received the request, and when this invocation times out. */
function invocationTiming(request: FastifyRequest) {
  // @fastify/aws-lambda's `decorateRequest`: this invocation's event and context.
  const { event, context } = (
    request as unknown as { awsLambda: { event?: APIGatewayProxyEventV2; context?: Context } }
  ).awsLambda;
  const now = Date.now();
  return {
    // Never later than now: the clocks of API Gateway and of this container may differ a little.
    arrivedAt:
      event?.requestContext.timeEpoch === undefined ? undefined : Math.min(event.requestContext.timeEpoch, now),
    answerBy: context ? now + context.getRemainingTimeInMillis() - ANSWER_MARGIN_MS : undefined,
  };
}

/**
 * The API on AWS Lambda behind API Gateway HTTP API (payload format 2.0): the same Fastify app
 * as the server, driven through @fastify/aws-lambda. Clients are created once per container, on
 * its first invocation, and reused by every invocation after it.
 */
const container = oncePerContainer(async () => {
  const config = await loadLambdaConfig();
  const api = await composeApi(config, {
    wait: { maxSeconds: LAMBDA_MAX_WAIT_SECONDS, hostTiming: invocationTiming },
    // API Gateway buffers a Lambda's answer: an events stream arrives whole when it ends, which
    // must be within its 30 s.
    maxStreamMs: LAMBDA_MAX_WAIT_SECONDS * 1000,
  });
  const proxy = awsLambdaFastify<APIGatewayProxyEventV2>(api.app, { decorateRequest: true });
  await api.app.ready();
  if (api.clients.redis) await untilRedisReady(api.clients.redis, CONNECT_WAIT_MS);
  // Subscribed before the first request, so `Prefer: wait` works from the start.
  await withTimeout(api.subscribe(), CONNECT_WAIT_MS, 'event subscription').catch((error: unknown) =>
    api.logger.warn({ err: error }, 'event subscription not ready; Prefer: wait relies on its status poll meanwhile'),
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
