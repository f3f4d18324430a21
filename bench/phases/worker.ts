import { randomUUID } from 'node:crypto';
import { eventually } from '../../scripts/lib/eventually.js';
import { startNodeProcess, type RunningProcess } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, peakRssMb, type Backend, type BenchContext } from '../context.js';
import type { BenchReport } from '../report.js';
import { drainQueue, fillQueue, startPayonceWorker, workerEnv } from '../worker-runs.js';

/** Starts one of the bench's own workers (`bench/*.ts`) on `backend` and `queueName`, tracked, and waits until it is ready. */
async function startBenchWorker(
  ctx: BenchContext,
  backend: Backend,
  script: string,
  queueName: string,
  profileName: string,
) {
  const worker = ctx.track(startNodeProcess(script, workerEnv(ctx, backend, queueName), ctx.profiled(profileName)));
  await eventually(
    () => {
      if (worker.child.exitCode !== null) throw new Error(`${script} exited early:\n${worker.output()}`);
      return worker.output().includes('worker started') ? true : undefined;
    },
    { timeoutMs: 20_000, what: script },
  );
  return worker;
}

/**
 * Fills a paused queue of its own on `backend` with the plan's jobs, starts a worker on it with
 * `start` (which tracks it), and drains the queue: jobs/s, CPU per job and the worker's peak memory.
 */
async function drainWith(
  ctx: BenchContext,
  backend: Backend,
  name: string,
  start: (queueName: string) => Promise<RunningProcess>,
  options: { claims: boolean },
) {
  const queueName = `${name}_${randomSuffix()}`;
  const { queue, jobs } = await fillQueue(ctx, backend, queueName, ctx.plan.workerJobs, options);
  const worker = await start(queueName);
  const { jobsPerSecond, cpu } = await drainQueue(ctx, backend, queue, jobs.length, worker.pid);
  const workerPeakRssMb = await peakRssMb(worker.pid);
  await ctx.stop(worker);
  return { jobs, jobsPerSecond, cpu, workerPeakRssMb };
}

/** What the worker phase measured on one backend. */
export interface WorkerFigures {
  worker: BenchReport['worker'];
  workerPeakRssMb: number;
  bareWorkerPeakRssMb: number;
  naiveWorkerPeakRssMb: number;
}

/**
 * Worker throughput with no payment delay, on each backend: payonce's worker against the naive
 * worker, with a bare BullMQ worker on the same backend and raw inserts of the same rows as
 * floors (the raw inserts use no queue: measured once, shown for both). Checks that payonce's
 * and the naive worker wrote every payment, so a fast run that dropped jobs cannot count.
 */
export async function measureWorker(ctx: BenchContext): Promise<Record<Backend, WorkerFigures>> {
  const { plan, database, profiled } = ctx;
  const paymentsWritten = async (jobs: Array<{ purchaseId: string }>, who: string) => {
    const ids = jobs.map((job) => job.purchaseId);
    const [{ n }] = (await database.db('payments').whereIn('id', ids).count({ n: '*' })) as [{ n: string }];
    if (Number(n) !== ids.length) throw new Error(`${who} wrote ${n} of ${ids.length} payments`);
  };

  const drainAll = async (backend: Backend) => {
    log(`worker throughput on ${backend}`);
    const suffix = backend === 'redis' ? '' : `-${backend}`;
    // The bare and the naive worker read nothing of payonce's claims: their jobs are only enqueued.
    const drainBaseline = (name: 'bare' | 'naive') =>
      drainWith(
        ctx,
        backend,
        name,
        (queueName) => startBenchWorker(ctx, backend, `bench/${name}-worker.ts`, queueName, `${name}-worker${suffix}`),
        { claims: false },
      );
    const bare = await drainBaseline('bare');
    const naive = await drainBaseline('naive');
    await paymentsWritten(naive.jobs, `the naive worker on ${backend}`);
    const payonce = await drainWith(
      ctx,
      backend,
      'real',
      async (queueName) =>
        ctx.track(
          await startPayonceWorker(
            ctx,
            backend,
            queueName,
            workerEnv(ctx, backend, queueName),
            profiled(`worker-throughput${suffix}`),
          ),
        ),
      { claims: true },
    );
    await paymentsWritten(payonce.jobs, `payonce's worker on ${backend}`);
    return { bare, naive, payonce };
  };
  const drained = { redis: await drainAll('redis'), postgres: await drainAll('postgres') };

  // Raw inserts: the same rows, one insert per row, 50 at a time on a pool of the worker's size.
  const rawRows = drained.redis.payonce.jobs.map((job) => ({
    id: randomUUID(),
    user_id: job.userId,
    product_id: job.productId,
    amount: job.amount,
    status: 'succeeded',
    failure_reason: null,
    idempotency_key: `raw:${job.idempotencyKey}`,
    accepted_at: new Date(job.acceptedAt),
  }));
  const rawStart = performance.now();
  const pending = [...rawRows];
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      for (let row = pending.pop(); row; row = pending.pop()) await database.db('payments').insert(row);
    }),
  );
  const rawInsertsPerSecond = rawRows.length / ((performance.now() - rawStart) / 1000);

  const figures = ({ bare, naive, payonce }: (typeof drained)[Backend]): WorkerFigures => ({
    worker: {
      jobs: plan.workerJobs,
      bareJobsPerSecond: Math.round(bare.jobsPerSecond),
      naiveJobsPerSecond: Math.round(naive.jobsPerSecond),
      workerJobsPerSecond: Math.round(payonce.jobsPerSecond),
      rawInsertsPerSecond: Math.round(rawInsertsPerSecond),
      ratioToBare: payonce.jobsPerSecond / bare.jobsPerSecond,
      ratioToNaive: payonce.jobsPerSecond / naive.jobsPerSecond,
      ratioToRawInserts: payonce.jobsPerSecond / rawInsertsPerSecond,
      cpu: { bare: bare.cpu, naive: naive.cpu, worker: payonce.cpu },
    },
    workerPeakRssMb: payonce.workerPeakRssMb,
    bareWorkerPeakRssMb: bare.workerPeakRssMb,
    naiveWorkerPeakRssMb: naive.workerPeakRssMb,
  });
  return { redis: figures(drained.redis), postgres: figures(drained.postgres) };
}
