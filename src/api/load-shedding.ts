import fastifyUnderPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../shared/http/error-body.js';

export interface LoadSheddingOptions {
  /** The mean event-loop delay, over one sample interval, past which requests are shed (EVENT_LOOP_MAX_DELAY_MS). */
  maxEventLoopDelayMs: number;
  /** How often the delay is measured (EVENT_LOOP_SAMPLE_INTERVAL_MS); shedding starts and stops on these ticks. */
  sampleIntervalMs: number;
}

/**
 * Routes served however late the loop runs: liveness (a restart would not help an overloaded
 * process), readiness (it reports the overload in its own shape, so load balancers send elsewhere)
 * and the metrics an operator needs most during an overload.
 */
const NEVER_SHED = new Set(['/health/live', '/health/ready', '/metrics']);

const MESSAGE = 'The service is overloaded and did not process this request; retry after Retry-After seconds';

/**
 * Sheds load (@fastify/under-pressure): while the event loop's mean delay exceeds the bound, a new
 * request is answered at once with 503 OVERLOADED and `Retry-After`, before any work is done for
 * it (nothing is claimed or queued, so retrying is safe). Register after the security headers
 * and before the routes. Returns whether the process is overloaded now, for readiness.
 */
export async function registerLoadShedding(app: FastifyInstance, options: LoadSheddingOptions): Promise<() => boolean> {
  // The state is re-read once per sample interval: retrying sooner cannot find it changed.
  const retryAfter = String(Math.max(1, Math.ceil(options.sampleIntervalMs / 1000)));
  let lastWarnedAt = 0;
  await app.register(fastifyUnderPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    sampleInterval: options.sampleIntervalMs,
    pressureHandler: (request, reply, _type, value) => {
      if (NEVER_SHED.has(request.routeOptions.url ?? '')) return; // served as usual
      // One line per sample interval, not per shed request: logging must not add to the overload.
      const now = Date.now();
      if (now - lastWarnedAt >= options.sampleIntervalMs) {
        lastWarnedAt = now;
        // Infinite when the loop did not turn once in a whole interval: it lagged at least that long.
        const delay = value !== undefined && Number.isFinite(value) ? Math.round(value) : options.sampleIntervalMs;
        request.log.warn(
          { eventLoopDelayMs: delay, maxEventLoopDelayMs: options.maxEventLoopDelayMs },
          'shedding load: the event loop lags past its bound',
        );
      }
      void reply
        .code(503)
        .header('retry-after', retryAfter)
        .send(errorBody(503, 'OVERLOADED', MESSAGE));
    },
  });
  return () => app.isUnderPressure();
}
