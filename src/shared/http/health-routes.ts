import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withTimeout } from '../timeout.js';

/** One dependency `/health/ready` asks: it is up when `check()` resolves within the deadline. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<unknown>;
}

/** Per-check deadline of /health/ready: a dependency slower than this counts as down. */
const READINESS_CHECK_TIMEOUT_MS = 1_000;

const Readiness = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.record(z.string(), z.enum(['ok', 'failed', 'shutting_down', 'overloaded'])),
});

export interface HealthRoutesOptions {
  checks: ReadinessCheck[];
  /** True once shutdown has begun: readiness turns 503 from then on. */
  isShuttingDown: () => boolean;
  /** True while the API sheds load: readiness turns 503 so load balancers send elsewhere. Default: never. */
  isOverloaded?: () => boolean;
  /** Upper bound for each check. Default READINESS_CHECK_TIMEOUT_MS. */
  timeoutMs?: number;
}

/**
 * `GET /health/live` (200 while the process serves) and `GET /health/ready` (200 when every check
 * answers, 503 naming the failed ones, and 503 `process: shutting_down` once shutdown began), the
 * same for the API and the worker. Needs the zod type provider's compilers on the app.
 */
export const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (app, options) => {
  const timeoutMs = options.timeoutMs ?? READINESS_CHECK_TIMEOUT_MS;

  app.get('/health/live', {
    schema: { response: { 200: z.object({ status: z.literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  });

  app.get('/health/ready', {
    schema: { response: { 200: Readiness, 503: Readiness } },
    handler: async (_request, reply) => {
      const results: Record<string, 'ok' | 'failed' | 'shutting_down' | 'overloaded'> = {};
      if (options.isShuttingDown()) results.process = 'shutting_down';
      else if (options.isOverloaded?.()) results.process = 'overloaded';
      await Promise.all(
        options.checks.map(async ({ name, check }) => {
          const ok = await withTimeout(check(), timeoutMs, name).then(
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
