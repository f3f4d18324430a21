import type { Server } from 'node:http';
import Fastify, { LogController, type FastifyError, type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import { errorBody } from '../shared/http/error-body.js';
import { healthRoutes, type ReadinessCheck } from '../shared/http/health-routes.js';
import { registerMetricsEndpoint } from '../shared/http/metrics-endpoint.js';
import type { Logger } from '../shared/logger.js';

export interface WorkerHttpOptions {
  /** What `/health/ready` asks: Postgres and the store backend. */
  readinessChecks: ReadinessCheck[];
  /** True once shutdown has begun: readiness answers 503 from then on. */
  isShuttingDown: () => boolean;
  /** `GET /metrics`: the worker's registry and ADMIN_TOKEN. Absent: no such route (404). */
  metrics?: { registry: Registry; adminToken: string } | undefined;
  logger: Logger;
}

/**
 * The worker process's own HTTP endpoint, for probes and Prometheus, not for clients:
 * `/health/live`, `/health/ready` and (with ADMIN_TOKEN) `/metrics`, answering errors in the API's
 * shape. Returned without listening. Requests are not logged: probes and scrapes come every few
 * seconds and would drown the job lines.
 */
export async function buildWorkerHttp(options: WorkerHttpOptions): Promise<FastifyInstance> {
  // Fastify's own info lines (listening, closing) say what `worker started` already says; its
  // warnings and errors still reach the worker's log, at the worker's level if that is higher.
  const { logger } = options;
  const level = logger.levelVal > logger.levels.values.warn! ? logger.level : 'warn';
  const fastifyOptions: FastifyHttpOptions<Server> = {
    loggerInstance: logger.child({}, { level }),
    logController: new LogController({ disableRequestLogging: true }),
  };
  const app = Fastify(fastifyOptions);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody(404, 'ROUTE_NOT_FOUND', `Route ${request.method} ${request.url} not found`)),
  );
  app.setErrorHandler((error: FastifyError, request, reply) => {
    // Only Fastify's own client errors (a malformed URL) are 4xx here; nothing else leaks out.
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send(errorBody(error.statusCode, 'VALIDATION_FAILED', error.message));
    }
    request.log.error({ err: error }, 'worker http: unhandled error');
    return reply.code(500).send(errorBody(500, 'INTERNAL_ERROR', 'Internal server error'));
  });
  await app.register(healthRoutes, { checks: options.readinessChecks, isShuttingDown: options.isShuttingDown });
  if (options.metrics) registerMetricsEndpoint(app, options.metrics);
  return app;
}
