import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../src/shared/config.js';
import type { PurchaseJob } from '../src/shared/purchase/purchase.js';
import { bullmqPrefix } from '../src/shared/redis/keys.js';
import type { RunningProcess } from '../scripts/lib/processes.js';
import { createScratchDatabase, deleteKeys, randomSuffix, SCRATCH_REDIS_URL } from '../scripts/lib/scratch.js';
import { redisServerPid } from './cpu.js';
import type { LoadResult } from './load.js';

/** How much each phase does; `quick` keeps every phase, on loads too small to mean anything. */
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
        concurrencies: [20],
        processes: [2],
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
        concurrencies: [10, 100, 1000],
        processes: [1, 2, 4],
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
  const queues: Queue[] = [];
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
      redisPid,
      /** The purchases load generators send, round-robin: one per seeded user. */
      bodies,
      /** The bench account's API key, which every request to payonce sends. */
      apiKey: database.account.apiKey,
      productId,
      /** node's arguments for a process under test: a CPU profile named after it with --profile. */
      profiled: (name: string) =>
        profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [],
      /** The `n`-th purchase job of a queue, as the API would enqueue it. */
      benchJob: (queueName: string, n: number): PurchaseJob => ({
        purchaseId: randomUUID(),
        userId: bodies[n % bodies.length]!.userId,
        productId,
        amount: 999,
        idempotencyKey: `user:${bodies[n % bodies.length]!.userId}:key:${queueName}-${n}`,
        acceptedAt: new Date().toISOString(),
      }),
      /** The environment of a payonce process on the bench's database and prefix. */
      env: (extra: Record<string, string> = {}) => ({
        DATABASE_URL: database.url,
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        // The limiter counts every request, as in production, but never refuses one here: the
        // bench measures its cost, not its limit.
        RATE_LIMIT_MAX: '1000000',
        ...extra,
      }),
      /** What the bench's own producers run with: payonce's defaults on the bench's prefix and `queueName`. */
      producerConfig: (queueName: string): Config => loadConfig({ REDIS_KEY_PREFIX: prefix, QUEUE_NAME: queueName }),
      /** A BullMQ queue under the bench's prefix, on the inspector connection; closed by `close()` if not before. */
      openQueue: (queueName: string) => {
        const queue = new Queue(queueName, { connection: inspector, prefix: bullmqPrefix(prefix) });
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
