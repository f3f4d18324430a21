import { createBatcher } from './batching.js';

/** One counter's total after an increment, and how long its window has left. */
export interface RateCount {
  count: number;
  /** Milliseconds until the window ends (at least 1). */
  resetMs: number;
}

/**
 * Fixed-window request counters shared by every API process (the rate limiter's store): one
 * implementation per store backend, `src/shared/redis/rate-counter.ts` and
 * `src/shared/postgres/rate-counter.ts`.
 */
export interface RateCounter {
  /** Counts one request under `key` in the current `windowMs` window; resolves with the window's total so far. */
  increment(key: string, windowMs: number): Promise<RateCount>;
}

/** What a backend does for a batch: adds `n` to each counter and returns every counter's new total. */
export type AddToCounters = (
  counters: ReadonlyArray<{ key: string; windowStart: number; windowMs: number; n: number }>,
) => Promise<ReadonlyMap<string, number>>;

/** The name of one key's counter in one window. */
export const counterName = (key: string, windowStart: number) => `${key}:${windowStart}`;

/**
 * A RateCounter that sends the increments of one event-loop turn as one addition per counter
 * (`add`): many requests of one key cost one round trip, and each still gets its own place in
 * the count, in arrival order.
 */
export function createBatchedRateCounter(add: AddToCounters, now: () => number = Date.now): RateCounter {
  const batcher = createBatcher<{ key: string; windowMs: number }, RateCount>(async (requests) => {
    const at = now();
    const counters = new Map<string, { key: string; windowStart: number; windowMs: number; n: number }>();
    const placed = requests.map(({ key, windowMs }) => {
      const windowStart = Math.floor(at / windowMs) * windowMs;
      const name = counterName(key, windowStart);
      const counter = counters.get(name) ?? { key, windowStart, windowMs, n: 0 };
      counter.n++;
      counters.set(name, counter);
      return { name, place: counter.n, resetMs: Math.max(1, windowStart + windowMs - at) };
    });
    const totals = await add([...counters.values()]);
    return placed.map(({ name, place, resetMs }) => {
      const total = totals.get(name);
      if (total === undefined) return new Error(`rate counter ${name} was not counted`);
      // This batch's share of the counter ends at `total`; its requests take its places in order.
      return { count: total - counters.get(name)!.n + place, resetMs };
    });
  });
  return { increment: (key, windowMs) => batcher.load({ key, windowMs }) };
}
