import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createRedisIdempotencyStore } from '../src/shared/redis/idempotency-store.js';
import { bullmqPrefix } from '../src/shared/redis/keys.js';
import { purchaseProducerFromConfig } from '../src/shared/queue/bullmq-purchase-producer.js';
import { eventually } from '../scripts/lib/eventually.js';
import { startWorker } from '../scripts/lib/processes.js';
import type { BenchContext } from './context.js';
import { startCpuMeter, type CpuUse } from './cpu.js';

/**
 * Fills a paused queue with `count` purchase jobs the way the API accepts them, so that a worker
 * started afterwards finds them all waiting. `claims: false` enqueues only, for a worker that
 * reads nothing of payonce's claims (the naive worker).
 */
export async function fillQueue(ctx: BenchContext, queueName: string, count: number, { claims = true } = {}) {
  const { prefix } = ctx;
  const config = ctx.producerConfig(queueName);
  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const idempotency = createRedisIdempotencyStore({
    redis: connection,
    prefix,
    unfinishedTtlSeconds: 300,
    stateTtlSeconds: 3600,
  });
  const producer = purchaseProducerFromConfig(config, { backend: 'redis', connection, prefix: bullmqPrefix(prefix) });
  const queue = ctx.openQueue(queueName);
  await queue.pause();
  const jobs = Array.from({ length: count }, (_, i) => ctx.benchJob(queueName, i));
  // payonce's API's own steps: claim (with the in-flight record), enqueue, confirm.
  for (let i = 0; i < jobs.length; i += 200) {
    await Promise.all(
      jobs.slice(i, i + 200).map(async (job) => {
        if (!claims) {
          await producer.enqueuePurchase(job);
          return;
        }
        await idempotency.claimIdempotencyKey(
          job.idempotencyKey,
          { purchaseId: job.purchaseId, fingerprint: 'bench' },
          {
            userId: job.userId,
            productId: job.productId,
            amount: job.amount,
            status: 'queued',
            createdAt: job.acceptedAt,
          },
        );
        await producer.enqueuePurchase(job);
        await idempotency.confirmClaim(job.idempotencyKey, job.purchaseId);
      }),
    );
  }
  await producer.close();
  connection.disconnect();
  return { queue, jobs };
}

/**
 * Drains a filled queue; returns jobs/s and the CPU per job of every process taking part.
 * With `steady`, also the rate between the `from`-th and the `to`-th completion, which
 * leaves out the ramp-up and the tail.
 */
export async function drainQueue(
  ctx: BenchContext,
  queue: Queue,
  count: number,
  workerPid: number,
  steady?: { from: number; to: number },
): Promise<{ jobsPerSecond: number; steadyJobsPerSecond?: number; cpu: CpuUse }> {
  const meter = await startCpuMeter(workerPid, ctx.redisPid);
  const t0 = performance.now();
  let reachedFrom: number | undefined;
  let reachedTo: number | undefined;
  await queue.resume();
  await eventually(
    async () => {
      const completed = await queue.getCompletedCount();
      if (steady && reachedFrom === undefined && completed >= steady.from) reachedFrom = performance.now();
      if (steady && reachedTo === undefined && completed >= steady.to) reachedTo = performance.now();
      return completed >= count ? true : undefined;
    },
    { timeoutMs: 600_000, intervalMs: 20, what: `${count} jobs to complete` },
  );
  const jobsPerSecond = count / ((performance.now() - t0) / 1000);
  const steadyJobsPerSecond =
    steady && reachedFrom !== undefined && reachedTo !== undefined && reachedTo > reachedFrom
      ? (steady.to - steady.from) / ((reachedTo - reachedFrom) / 1000)
      : undefined;
  return { jobsPerSecond, steadyJobsPerSecond, cpu: await meter.stop(count) };
}

/**
 * Starts a payonce worker on `queueName` and waits until BullMQ lists one more worker: at the
 * bench's LOG_LEVEL the worker does not log that it started.
 */
export async function startPayonceWorker(
  ctx: BenchContext,
  queueName: string,
  workerEnvironment: Record<string, string>,
  nodeArgs: string[] = [],
) {
  const queue = ctx.openQueue(queueName);
  const before = await queue.getWorkersCount();
  const running = await startWorker(workerEnvironment, {
    ready: async () => (await queue.getWorkersCount()) > before,
    nodeArgs,
  });
  await queue.close();
  return running;
}

/** A throughput worker's environment: no simulated payment delay, 50 jobs at a time, unless `extra` says otherwise. */
export const workerEnv = (ctx: BenchContext, queueName: string, extra: Record<string, string> = {}) =>
  ctx.env({ QUEUE_NAME: queueName, PAYMENT_DELAY_MS: '0', WORKER_CONCURRENCY: '50', ...extra });
