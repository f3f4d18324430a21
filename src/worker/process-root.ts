import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../shared/config.js';
import { createMetricsRegistry } from '../shared/http/metrics-endpoint.js';
import { createResources } from '../shared/lifecycle.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { composeWorker } from './composition-root.js';
import { buildWorkerHttp } from './http.js';
import { createWorkerMetrics } from './metrics.js';

/**
 * The long-running worker process: the worker's composition root (as Lambda has it) plus what
 * only a process has, its HTTP endpoint for probes and Prometheus, and, with ADMIN_TOKEN, the
 * metrics it serves (nobody could scrape them otherwise, so without the token nothing is counted).
 * Apart from composition-root.ts so that the Lambda bundle carries neither Fastify nor prom-client.
 *
 * `close()` turns readiness 503 at once, then closes the worker (the transport drains its jobs
 * first) and the HTTP endpoint last: probes see the drain as "shutting down" rather than as a
 * refused connection, and `/metrics` counts the drained jobs.
 */
export function composeWorkerProcess(config: Config, options: { logger?: Logger } = {}) {
  const logger = options.logger ?? createLogger(config, 'payonce-worker');
  const registry = config.ADMIN_TOKEN === undefined ? undefined : createMetricsRegistry();
  const worker = composeWorker(config, { logger, metrics: registry && createWorkerMetrics(registry) });
  const http = createResources(logger, { stepTimeoutMs: config.SHUTDOWN_TIMEOUT_MS });
  let shuttingDown = false;

  return {
    ...worker,

    /**
     * Serves `/health/live`, `/health/ready` (Postgres and the store backend) and, with
     * ADMIN_TOKEN, `/metrics` on HOST:WORKER_HTTP_PORT until `close()`. Call it before
     * `startTransport`: a port that is taken then stops the start before any job is taken.
     * Resolves with the address it listens on (WORKER_HTTP_PORT 0: the port the OS picked).
     */
    async startHttp(): Promise<string> {
      const app: FastifyInstance = http.own(
        'http',
        await buildWorkerHttp({
          readinessChecks: worker.readinessChecks,
          isShuttingDown: () => shuttingDown,
          metrics: registry && { registry, adminToken: config.ADMIN_TOKEN! },
          logger,
        }),
        (app) => app.close(),
      );
      await app.listen({ host: config.HOST, port: config.WORKER_HTTP_PORT });
      const { port } = app.server.address() as AddressInfo;
      return `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
    },

    /** Readiness answers 503 from now on; the worker closes, then the HTTP endpoint. Idempotent. */
    async close(): Promise<void> {
      shuttingDown = true;
      await worker.close();
      await http.close();
    },
  };
}

export type WorkerProcessRoot = ReturnType<typeof composeWorkerProcess>;
