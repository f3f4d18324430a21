import type { Server } from 'node:http';
import Fastify, { type FastifyHttpOptions, type FastifyInstance, type onRequestAsyncHookHandler } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ProductsRepository } from './catalog/products-repository.js';
import { registerCheckoutPage, type CheckoutPageOptions } from './checkout-page.js';
import type { UsersRepository } from './catalog/users-repository.js';
import { frameworkErrorHandler, registerErrorHandling } from './error-handler.js';
import { registerLoadShedding, type LoadSheddingOptions } from './load-shedding.js';
import { registerMetrics, type ApiMetricsOptions } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import type { PurchaseService } from './purchase-service.js';
import type { PurchaseStatusStreams } from './purchase-status-streams.js';
import type { QueueBoardOptions } from './queue-board.js';
import { REQUEST_ID_HEADER, requestId } from './request-id.js';
import { registerSecurityHeaders } from './security-headers.js';
import { healthRoutes, type ReadinessCheck } from '../shared/http/health-routes.js';
import { productsRoutes } from './routes/products.js';
import { registerRateLimit, type RateLimitOptions } from './rate-limit.js';
import { purchasesRoutes, type PreferWaitOptions } from './routes/purchases.js';
import { usersRoutes } from './routes/users.js';
import { webhooksRoutes, type WebhooksRoutesOptions } from './routes/webhooks.js';

export interface AppDeps {
  /** The API key check in front of every client route (`apiKeyAuth`); it sets `request.accountId`. */
  authenticate: onRequestAsyncHookHandler;
  /** Per-key rate limiting of the client routes. Default: none (RATE_LIMIT_MAX=0). */
  rateLimit?: RateLimitOptions | undefined;
  users: UsersRepository;
  products: ProductsRepository;
  /** The webhook endpoints and deliveries of the caller's account. */
  webhooks: WebhooksRoutesOptions;
  purchases: PurchaseService;
  /** The purchases' events streams (`GET /payment/purchase/:id/events`). */
  statusStreams: PurchaseStatusStreams;
  readinessChecks: ReadinessCheck[];
  /** True once shutdown has begun (readiness answers 503 from then on). Default: never. */
  isShuttingDown?: () => boolean;
  /** How `Prefer: wait` is bounded. Default: up to MAX_WAIT_SECONDS from the request's arrival. */
  wait?: PreferWaitOptions;
  /** Load shedding (503 OVERLOADED while the event loop lags). Default: off. */
  loadShedding?: LoadSheddingOptions | undefined;
  /** `GET /metrics` and what it reads (set when ADMIN_TOKEN is). Default: no metrics route (404). */
  metrics?: ApiMetricsOptions;
  /** The checkout page at /demo (and `GET /` leading there). Default: none (404). */
  checkoutPage?: CheckoutPageOptions | undefined;
  /** The queue dashboard at /admin/queues (set when ADMIN_TOKEN is, on BullMQ). Default: none (404). */
  queueBoard?: QueueBoardOptions | undefined;
  /** Fastify's own options: the logger, body limit, timeouts, Node's `http` server options and so on. */
  fastify?: FastifyHttpOptions<Server>;
}

/**
 * Builds the HTTP API without listening: the server entry, tests (`app.inject`) and the Lambda
 * handler all wrap this same app.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // A client's well-formed X-Request-Id names its request in every log line; `requestId` checks it.
    requestIdHeader: false,
    genReqId: requestId,
    frameworkErrors: frameworkErrorHandler,
    ...deps.fastify,
  });
  // First hook of all, so every answer carries it, a shed request's and an error's included.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: a text/plain body is answered 415 instead of being parsed and misread.
  app.removeContentTypeParser('text/plain');
  registerErrorHandling(app);
  registerSecurityHeaders(app);
  // After the security headers, which its early answers carry; before every route.
  const isOverloaded = deps.loadShedding ? await registerLoadShedding(app, deps.loadShedding) : () => false;
  // Before every route it times; before @fastify/swagger, so /metrics stays out of the API document.
  if (deps.metrics) registerMetrics(app, deps.metrics);
  // Before the routes: @fastify/swagger documents the routes added after it.
  await registerOpenApi(app);

  await app.register(healthRoutes, {
    checks: deps.readinessChecks,
    isShuttingDown: deps.isShuttingDown ?? (() => false),
    isOverloaded,
  });
  // The client routes, and only they, need an API key: health, the API document and the operator
  // routes (ADMIN_TOKEN) are outside this context. The limiter counts after the key check.
  await app.register(async (client) => {
    client.addHook('onRequest', deps.authenticate);
    if (deps.rateLimit) await registerRateLimit(client, deps.rateLimit);
    await client.register(usersRoutes, { users: deps.users });
    await client.register(productsRoutes, { products: deps.products });
    await client.register(purchasesRoutes, { purchases: deps.purchases, streams: deps.statusStreams, wait: deps.wait });
    await client.register(webhooksRoutes, deps.webhooks);
  });
  // Public, as /docs is: the page is static, and it calls the client routes with an API key.
  if (deps.checkoutPage) await registerCheckoutPage(app, deps.checkoutPage);
  if (deps.queueBoard) {
    // Loaded only when served: Bull Board needs BullMQ, which the Lambda bundles leave out.
    const { registerQueueBoard } = await import('./queue-board.js');
    await registerQueueBoard(app, deps.queueBoard);
  }
  return app;
}
