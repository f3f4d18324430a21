import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { adminGuard } from './admin-guard.js';

/**
 * A registry of a process's own (tests run many apps in one process) with prom-client's default
 * process metrics (`process_*`, `nodejs_*`), minus the gauges named like counters, which
 * promtool's lint rejects: `nodejs_active_handles` and the like (by type) carry the same numbers.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  return registry;
}

/**
 * `GET /metrics`: `registry` in Prometheus' text format, behind `Authorization: Bearer
 * <adminToken>` (adminGuard), kept out of the API document. Register it only when ADMIN_TOKEN is
 * set: without it the route does not exist (404, as any unknown route).
 */
export function registerMetricsEndpoint(
  app: FastifyInstance,
  options: { registry: Registry; adminToken: string },
): void {
  const { registry } = options;
  app.get('/metrics', {
    onRequest: adminGuard(options.adminToken),
    schema: { hide: true },
    handler: async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  });
}
