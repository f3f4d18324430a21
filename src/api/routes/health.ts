import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withTimeout } from '../../shared/timeout.js';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<unknown>;
}

const Readiness = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.record(z.string(), z.enum(['ok', 'failed', 'shutting_down', 'overloaded'])),
});

export interface HealthRoutesOptions {
  checks: ReadinessCheck[];
  /** True once shutdown has begun: readiness turns 503 before the listener closes. */
  isShuttingDown: () => boolean;
  /** True while load shedding sheds requests: readiness turns 503 so load balancers send elsewhere. */
  isOverloaded: () => boolean;
  /** Upper bound for each check. */
  timeoutMs: number;
}

export const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (app, options) => {
  app.get('/health/live', {
    schema: { response: { 200: z.object({ status: z.literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  });

  app.get('/health/ready', {
    schema: { response: { 200: Readiness, 503: Readiness } },
    handler: async (_request, reply) => {
      const results: Record<string, 'ok' | 'failed' | 'shutting_down' | 'overloaded'> = {};
      if (options.isShuttingDown()) results.process = 'shutting_down';
      else if (options.isOverloaded()) results.process = 'overloaded';
      await Promise.all(
        options.checks.map(async ({ name, check }) => {
          const ok = await withTimeout(check(), options.timeoutMs, name).then(
            () => true,
            () => false,
          );
          results[name] = ok ? 'ok' : 'failed';
        }),
      );
      const ready = Object.values(results).every((result) => result === 'ok');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', checks: results });
    },
  });
};
