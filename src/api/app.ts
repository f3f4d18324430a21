import type { Server } from 'node:http';
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ProductsRepository } from './catalog/products-repository.js';
import type { UsersRepository } from './catalog/users-repository.js';
import { frameworkErrorHandler, registerErrorHandling } from './error-handler.js';
import { registerMetrics, type ApiMetricsOptions } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import type { PurchaseService } from './purchase-service.js';
import { healthRoutes, type ReadinessCheck } from '../shared/http/health-routes.js';
import { productsRoutes } from './routes/products.js';
import { purchasesRoutes, type PreferWaitOptions } from './routes/purchases.js';
import { usersRoutes } from './routes/users.js';

export interface AppDeps {
  users: UsersRepository;
  products: ProductsRepository;
  purchases: PurchaseService;
  readinessChecks: ReadinessCheck[];
  /** True once shutdown has begun (readiness answers 503 from then on). Default: never. */
  isShuttingDown?: () => boolean;
  /** How `Prefer: wait` is bounded. Default: up to MAX_WAIT_SECONDS from the request's arrival. */
  wait?: PreferWaitOptions;
  /** `GET /metrics` and what it reads (set when ADMIN_TOKEN is). Default: no metrics route (404). */
  metrics?: ApiMetricsOptions;
  /** Fastify's own options: the logger, body limit, timeouts, Node's `http` server options and so on. */
  fastify?: FastifyHttpOptions<Server>;
}

/**
 * Builds the HTTP API without listening: the server entry, tests (`app.inject`) and the Lambda
 * handler all wrap this same app.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Clients see the request id in every log line about their request.
    requestIdHeader: 'x-request-id',
    frameworkErrors: frameworkErrorHandler,
    ...deps.fastify,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: a text/plain body is answered 415 instead of being parsed and misread.
  app.removeContentTypeParser('text/plain');
  registerErrorHandling(app);
  // Before every route it times; before @fastify/swagger, so /metrics stays out of the API document.
  if (deps.metrics) registerMetrics(app, deps.metrics);
  // Before the routes: @fastify/swagger documents the routes added after it.
  await registerOpenApi(app);

  await app.register(healthRoutes, {
    checks: deps.readinessChecks,
    isShuttingDown: deps.isShuttingDown ?? (() => false),
  });
  await app.register(usersRoutes, { users: deps.users });
  await app.register(productsRoutes, { products: deps.products });
  await app.register(purchasesRoutes, { purchases: deps.purchases, wait: deps.wait });
  return app;
}
