import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createPostgresIdempotencyStore } from '../src/shared/postgres/idempotency-store.js';
import type { IdempotencyStore } from '../src/shared/purchase/idempotency.js';
import type { AccountPurchaseJob } from '../src/shared/purchase/purchases-repository.js';
import { createPurchasesRepository } from '../src/shared/purchase/purchases-repository.js';
import { purchaseProducerFromConfig } from '../src/shared/queue/bullmq-purchase-producer.js';
import { createRedisIdempotencyStore } from '../src/shared/redis/idempotency-store.js';
import { startWorker } from '../scripts/lib/processes.js';
import type { Backend, BenchContext } from './context.js';
import type { CpuUse } from './cpu.js';

/** `backend`'s idempotency store, as payonce's API keeps it, on the bench's Redis prefix or database. */
function benchIdempotencyStore(ctx: BenchContext, backend: Backend): { store: IdempotencyStore; close: () => void } {
  if (backend === 'postgres') {
    return {
      store: createPostgresIdempotencyStore({ db: ctx.database.db, unfinishedTtlSeconds: 300 }),
      close: () => {},
    };
  }
  const redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const store = createRedisIdempotencyStore({
    redis,
    prefix: ctx.prefix,
    unfinishedTtlSeconds: 300,
    stateTtlSeconds: 3600,
  });
  return { store, close: () => redis.disconnect() };
}

/**
 * Fills a paused queue of `backend` with `count` purchase jobs the way the API accepts them, so
 * that a worker started afterwards finds them all waiting. `claims: false` enqueues only, for a
 * worker that reads nothing of payonce's claims or records (the bare and the naive worker).
 */
export async function fillQueue(
  ctx: BenchContext,
  backend: Backend,
  queueName: string,
  count: number,
  { claims = true } = {},
) {
  const producerStore = ctx.openProducerStore(backend);
  const producer = purchaseProducerFromConfig(ctx.producerConfig(queueName), producerStore.store);
  const idempotency = benchIdempotencyStore(ctx, backend);
  const purchases = createPurchasesRepository({ db: ctx.database.db });
  const queue = ctx.openQueue(queueName, backend);
  await queue.pause();
  const jobs = Array.from({ length: count }, (_, i) => ctx.benchJob(queueName, i));
  // payonce's API's own steps: claim (on Redis with the in-flight record), record the purchase
  // in Postgres (where the Postgres backend's worker marks it processing), enqueue, confirm.
  const accept = async (job: AccountPurchaseJob) => {
    if (!claims) {
      await producer.enqueuePurchase(job);
      return;
    }
    await idempotency.store.claimIdempotencyKey(
      job.idempotencyKey,
      { purchaseId: job.purchaseId, fingerprint: 'bench' },
      { userId: job.userId, productId: job.productId, amount: job.amount, status: 'queued', createdAt: job.acceptedAt },
    );
    await purchases.recordAccepted(job);
    await producer.enqueuePurchase(job);
    await idempotency.store.confirmClaim(job.idempotencyKey, job.purchaseId);
  };
  for (let i = 0; i < jobs.length; i += 200) await Promise.all(jobs.slice(i, i + 200).map(accept));
  await producer.close();
  idempotency.close();
  producerStore.close();
  return { queue, jobs };
}

/** Gives up on a drain after this long. */
const DRAIN_TIMEOUT_MS = 600_000;

/**
 * Drains a filled queue; returns jobs/s and the CPU per job of every process taking part.
 * With `steady`, also the rate between the `from`-th and the `to`-th completion, which
 * leaves out the ramp-up and the tail.
 *
 * Without `steady` (the throughput drains, thousands of jobs, no payment delay) it polls BullMQ's
 * completed count less often while many jobs remain: on the Postgres backend each count scans
 * the queue's jobs (3.7 ms of Postgres CPU with 10,000 of them, measured here), which polling
 * every 20 ms throughout would have charged to the worker under test at some 150 µs per job.
 * Each wait is a quarter of the time the rest is expected to take at the rate so far, between
 * 20 ms and 1 s, so the last polls are as close together as ever. With `steady` (the scaling
 * rows: a few hundred jobs on Postgres, finishing in bursts a payment delay apart) it polls
 * every 20 ms, as a wait sized on the rate could sleep through the burst that crosses a mark.
 */
export async function drainQueue(
  ctx: BenchContext,
  backend: Backend,
  queue: Queue,
  count: number,
  workerPid: number,
  steady?: { from: number; to: number },
): Promise<{ jobsPerSecond: number; steadyJobsPerSecond?: number; cpu: CpuUse }> {
  const meter = await ctx.meterCpu(workerPid, backend);
  const t0 = performance.now();
  let reachedFrom: number | undefined;
  let reachedTo: number | undefined;
  await queue.resume();
  for (;;) {
    const completed = await queue.getCompletedCount();
    const now = performance.now();
    if (steady && reachedFrom === undefined && completed >= steady.from) reachedFrom = now;
    if (steady && reachedTo === undefined && completed >= steady.to) reachedTo = now;
    if (completed >= count) break;
    if (now - t0 > DRAIN_TIMEOUT_MS)
      throw new Error(`timed out waiting for ${count} jobs to complete (${completed} did)`);
    const expectedMs = completed > 0 ? ((count - completed) * (now - t0)) / completed : 0;
    await sleep(steady ? 20 : Math.min(1_000, Math.max(20, expectedMs / 4)));
  }
  const jobsPerSecond = count / ((performance.now() - t0) / 1000);
  const steadyJobsPerSecond =
    steady && reachedFrom !== undefined && reachedTo !== undefined && reachedTo > reachedFrom
      ? (steady.to - steady.from) / ((reachedTo - reachedFrom) / 1000)
      : undefined;
  return { jobsPerSecond, steadyJobsPerSecond, cpu: await meter.stop(count) };
}

/**
 * Starts a payonce worker on `backend` and `queueName` and waits until BullMQ lists one more
 * worker: at the bench's LOG_LEVEL the worker does not log that it started.
 */
export async function startPayonceWorker(
  ctx: BenchContext,
  backend: Backend,
  queueName: string,
  workerEnvironment: Record<string, string>,
  nodeArgs: string[] = [],
) {
  const queue = ctx.openQueue(queueName, backend);
  const before = await queue.getWorkersCount();
  const running = await startWorker(workerEnvironment, {
    ready: async () => (await queue.getWorkersCount()) > before,
    nodeArgs,
  });
  await queue.close();
  return running;
}

/** A throughput worker's environment on `backend`: no simulated payment delay, 50 jobs at a time, unless `extra` says otherwise. */
export const workerEnv = (ctx: BenchContext, backend: Backend, queueName: string, extra: Record<string, string> = {}) =>
  ctx.env(backend, { QUEUE_NAME: queueName, PAYMENT_DELAY_MS: '0', WORKER_CONCURRENCY: '50', ...extra });
