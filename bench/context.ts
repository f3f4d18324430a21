import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../src/shared/config.js';
import type { PurchaseJob } from '../src/shared/purchase/purchase.js';
import type { AccountPurchaseJob } from '../src/shared/purchase/purchases-repository.js';
import { createQueue, type BullmqStore } from '../src/shared/queue/bullmq-store.js';
import { bullmqPrefix } from '../src/shared/redis/keys.js';
import type { RunningProcess } from '../scripts/lib/processes.js';
import { createScratchDatabase, deleteKeys, randomSuffix, SCRATCH_REDIS_URL } from '../scripts/lib/scratch.js';
import { redisServerPid, startCpuMeter } from './cpu.js';
import type { LoadResult } from './load.js';

/** A store backend the bench measures payonce on (STORE_BACKEND): Redis first, then Postgres. */
export type Backend = Config['STORE_BACKEND'];

/**
 * How much each phase does; `quick` keeps every phase, on loads too small to mean anything.
 * `scaling` is the matrix of each backend: worker processes at a fixed concurrency, then one
 * process at each of `concurrencies`. The Postgres backend's is smaller: every worker process
 * there holds its own Postgres pools (see BENCHMARKS.md), and the server takes 100 connections.
 */
export function benchPlan(quick: boolean) {
  return quick
    ? {
        seconds: 1,
        warmup: 1,
        connections: 20,
        rounds: 1,
        workerJobs: 200,
        addJobs: 2_000,
        e2eRate: 100,
        e2eSeconds: 1,
        scaleDelayMs: 100,
        scaleRounds: 3,
        scaling: {
          redis: { perProcess: 10, processes: [2], concurrencies: [20] },
          postgres: { perProcess: 10, processes: [2], concurrencies: [20] },
        },
      }
    : {
        seconds: 10,
        warmup: 3,
        connections: 50,
        rounds: 2,
        workerJobs: 10_000,
        addJobs: 10_000,
        e2eRate: 500,
        e2eSeconds: 10,
        scaleDelayMs: 1000,
        scaleRounds: 5,
        scaling: {
          redis: { perProcess: 25, processes: [1, 2, 4], concurrencies: [10, 100, 1000] },
          postgres: { perProcess: 25, processes: [1, 2], concurrencies: [100] },
        },
      };
}

/** A progress line on stderr, which leaves stdout to the report. */
export const log = (line: string) => console.error(`[bench] ${line}`);

/** Peak resident memory of a process (VmHWM), in MB. */
export async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/**
 * Runs each of `runs` in turn, `rounds` times over, and keeps each one's best run (by req/s):
 * alternating spreads a noisy neighbour over all of them instead of one.
 */
export async function bestOf<Name extends string>(
  rounds: number,
  runs: Record<Name, () => Promise<LoadResult>>,
): Promise<Record<Name, LoadResult>> {
  const best: Partial<Record<Name, LoadResult>> = {};
  for (let round = 0; round < rounds; round++) {
    for (const name of Object.keys(runs) as Name[]) {
      const result = await runs[name]();
      if (!best[name] || result.requestsPerSecond > best[name].requestsPerSecond) best[name] = result;
    }
  }
  return best as Record<Name, LoadResult>;
}

/**
 * What every phase shares: the plan, a database seeded with 1000 users and one product, a key
 * prefix, and the processes and queues started so far. `close()` kills and removes all of it,
 * so a failed run leaves nothing behind.
 * @param options.profileDir with it, `profiled(name)` makes node write a CPU profile there.
 */
export async function openBenchContext(options: { quick: boolean; profileDir?: string }) {
  const { quick, profileDir } = options;
  const plan = benchPlan(quick);
  const database = await createScratchDatabase('payonce_bench');
  const prefix = `bench_${randomSuffix()}`;
  const redisUrl = SCRATCH_REDIS_URL;
  const processes: RunningProcess[] = [];
  const inspector = new Redis(redisUrl);
  const queues: Queue<PurchaseJob>[] = [];
  const close = async () => {
    for (const running of processes.reverse()) await running.stop('SIGKILL').catch(() => {});
    for (const queue of queues) await queue.close().catch(() => {});
    inspector.disconnect();
    await deleteKeys(prefix).catch(() => {});
    await database.drop().catch(() => {});
  };

  try {
    const redisPid = await redisServerPid(() => inspector.info('server'));
    const users = await database
      .db('users')
      .insert(Array.from({ length: 1000 }, (_, i) => ({ account_id: database.account.id, username: `bench_${i}` })))
      .returning('id');
    const [product] = await database
      .db('products')
      .insert({ account_id: database.account.id, name: 'bench', price: 999 })
      .returning<{ id: number }[]>('id');
    const productId = product!.id;
    const bodies = users.map((row) => ({ userId: (row as { id: number }).id, productId }));
    return {
      quick,
      plan,
      database,
      prefix,
      redisUrl,
      /** The purchases load generators send, round-robin: one per seeded user. */
      bodies,
      /** The bench account's API key, which every request to payonce sends. */
      apiKey: database.account.apiKey,
      productId,
      /** node's arguments for a process under test: a CPU profile named after it with --profile. */
      profiled: (name: string) =>
        profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [],
      /** The `n`-th purchase job of a queue, as the API would enqueue it. */
      benchJob: (queueName: string, n: number): AccountPurchaseJob => ({
        purchaseId: randomUUID(),
        accountId: database.account.id,
        userId: bodies[n % bodies.length]!.userId,
        productId,
        amount: 999,
        idempotencyKey: `user:${bodies[n % bodies.length]!.userId}:key:${queueName}-${n}`,
        acceptedAt: new Date().toISOString(),
      }),
      /**
       * The environment of a payonce process (or a baseline) on the bench's database, on `backend`:
       * Redis under the bench's prefix, or the Postgres backend with no Redis at all (REDIS_URL
       * emptied, which counts as unset).
       */
      env: (backend: Backend, extra: Record<string, string> = {}) => ({
        DATABASE_URL: database.url,
        ...(backend === 'redis'
          ? { STORE_BACKEND: 'redis', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix }
          : { STORE_BACKEND: 'postgres', REDIS_URL: '' }),
        LOG_LEVEL: 'warn',
        // The limiter counts every request, as in production, but never refuses one here: the
        // bench measures its cost, not its limit.
        RATE_LIMIT_MAX: '1000000',
        ...extra,
      }),
      /**
       * Starts counting the CPU of `pid`, of this process (the load generator), of the Postgres
       * processes that serve the bench's database or the whole server (WAL writer, checkpointer,
       * ...), leaving out other databases' backends on a shared server, and on the Redis backend of
       * the Redis server. On Postgres, Redis plays no part and is not metered.
       */
      meterCpu: (pid: number, backend: Backend) =>
        startCpuMeter({
          pid,
          redisPid: backend === 'redis' ? redisPid : undefined,
          postgresPids: async () => {
            const { rows } = await database.db.raw<{ rows: Array<{ pid: number }> }>(
              'select pid from pg_stat_activity where datname = current_database() or datname is null',
            );
            return rows.map((row) => row.pid);
          },
        }),
      /** What the bench's own producers run with: payonce's defaults on the bench's prefix and `queueName`. */
      producerConfig: (queueName: string): Config => loadConfig({ REDIS_KEY_PREFIX: prefix, QUEUE_NAME: queueName }),
      /**
       * Where the bench's own producers keep `backend`'s queues, as payonce's processes do: a Redis
       * connection of their own under the bench's prefix, or a pool of DATABASE_POOL_MAX's default
       * on the bench's database. `close()` closes what this opened.
       */
      openProducerStore: (backend: Backend): { store: BullmqStore; close: () => void } => {
        if (backend === 'postgres') {
          const { DATABASE_POOL_MAX } = loadConfig({});
          return { store: { backend, databaseUrl: database.url, poolMax: DATABASE_POOL_MAX }, close: () => {} };
        }
        const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
        return {
          store: { backend, connection, prefix: bullmqPrefix(prefix) },
          close: () => connection.disconnect(),
        };
      },
      /**
       * A BullMQ queue of `backend` to inspect: on the inspector connection under the bench's
       * prefix, or on a small pool of its own in the bench's database. Closed by `close()` if not before.
       */
      openQueue: (queueName: string, backend: Backend) => {
        const store: BullmqStore =
          backend === 'redis'
            ? { backend, connection: inspector, prefix: bullmqPrefix(prefix) }
            : { backend, databaseUrl: database.url, poolMax: 2 };
        const queue = createQueue<PurchaseJob>(queueName, store);
        queues.push(queue);
        return queue;
      },
      /** Registers a started process, for `close()` to kill if the run fails before `stop`. */
      track: <T extends RunningProcess>(running: T): T => {
        processes.push(running);
        return running;
      },
      stop: async (running: RunningProcess) => {
        await running.stop();
        processes.splice(processes.indexOf(running), 1);
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

export type BenchContext = Awaited<ReturnType<typeof openBenchContext>>;
