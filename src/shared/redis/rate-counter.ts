import { counterName, createBatchedRateCounter, type RateCounter } from '../rate-counter.js';
import type { RedisClient } from './connection.js';
import { redisKeys } from './keys.js';
import { payonceScripts } from './scripts.js';

/** Rate counters in Redis: one key per counter and window, expiring with it; one script call per counter per batch. */
export function createRedisRateCounter({ redis, prefix }: { redis: RedisClient; prefix: string }): RateCounter {
  const keys = redisKeys(prefix);
  const scripts = payonceScripts(redis);
  return createBatchedRateCounter(async (counters) => {
    const totals = await Promise.all(
      counters.map(({ key, windowStart, windowMs, n }) =>
        scripts.payonceAddToRateCounter(1, keys.rateCounter(counterName(key, windowStart)), n, windowMs + 1_000),
      ),
    );
    return new Map(counters.map(({ key, windowStart }, i) => [counterName(key, windowStart), totals[i]!]));
  });
}
