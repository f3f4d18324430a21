import fastifyRateLimit, { type FastifyRateLimitStore } from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import type { RateCounter } from '../shared/rate-counter.js';
import { AppError } from './errors.js';

export interface RateLimitOptions {
  /** The counters every API process shares (Redis, or Postgres on the Postgres backend). */
  counter: RateCounter;
  /** Requests per second one API key may make (RATE_LIMIT_MAX). */
  maxPerSecond: number;
}

/** The limiter's window: RATE_LIMIT_MAX counts requests per second. */
const WINDOW_MS = 1_000;

/**
 * Per-API-key rate limiting on the client routes of `app` (register it in their context, after
 * the key check: it counts by `request.apiKeyHash`). Over the limit, a request is answered
 * 429 RATE_LIMITED with `Retry-After` and the `RateLimit-*` headers before its handler runs, so
 * a limited purchase claims nothing. Every answer under the limit carries `RateLimit-*` too.
 * If the counters cannot be reached, requests pass: the routes then meet the same outage.
 */
export async function registerRateLimit(app: FastifyInstance, options: RateLimitOptions): Promise<void> {
  const { counter, maxPerSecond } = options;
  // @fastify/rate-limit constructs its store; this one hands every count to the shared counter.
  class SharedStore implements FastifyRateLimitStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void): void {
      counter.increment(key, WINDOW_MS).then(
        ({ count, resetMs }) => callback(null, { current: count, ttl: resetMs }),
        (error: unknown) => callback(error as Error),
      );
    }
    child(): FastifyRateLimitStore {
      return this;
    }
  }
  await app.register(fastifyRateLimit, {
    global: true,
    hook: 'onRequest',
    max: maxPerSecond,
    timeWindow: WINDOW_MS,
    store: SharedStore,
    keyGenerator: (request) => request.apiKeyHash,
    skipOnError: true,
    // RateLimit-Limit, -Remaining, -Reset (the IETF draft's names), and Retry-After when limited.
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) =>
      new AppError('RATE_LIMITED', `More than ${context.max} requests a second with this API key; retry shortly`),
  });
}
