import type { Db } from '../db.js';
import { counterName, createBatchedRateCounter, type RateCounter } from '../rate-counter.js';
import { retryOnDeadlock } from './deadlock.js';

/**
 * Rate counters in the unlogged `rate_limit_counters` table: one row per counter and window,
 * every counter of a batch added in one statement (in key order, so concurrent batches never
 * wait on each other crosswise). Old windows are deleted by `sweepExpired`.
 */
export function createPostgresRateCounter({ db }: { db: Db }): RateCounter & { sweepExpired(): Promise<number> } {
  const counter = createBatchedRateCounter((counters) =>
    retryOnDeadlock(async () => {
      const sorted = [...counters].sort((a, b) =>
        a.key < b.key ? -1 : a.key > b.key ? 1 : a.windowStart - b.windowStart,
      );
      const { rows } = await db.raw<{ rows: Array<{ key: string; window_start: string; count: number }> }>(
        `insert into rate_limit_counters as c (key, window_start, count)
         select t.key, t.window_start, t.n
         from unnest(?::text[], ?::bigint[], ?::int[]) with ordinality as t(key, window_start, n, i)
         order by t.i
         on conflict (key, window_start) do update set count = c.count + excluded.count
         returning c.key, c.window_start, c.count`,
        [sorted.map((c) => c.key), sorted.map((c) => c.windowStart), sorted.map((c) => c.n)],
      );
      return new Map(rows.map((row) => [counterName(row.key, Number(row.window_start)), row.count]));
    }),
  );
  return {
    ...counter,
    /** Deletes counters of windows that ended over a minute ago; returns how many. */
    sweepExpired: () =>
      db('rate_limit_counters')
        .where('window_start', '<', Date.now() - 60_000)
        .delete(),
  };
}
