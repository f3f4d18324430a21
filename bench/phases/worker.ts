import { randomUUID } from 'node:crypto';
import { eventually } from '../../scripts/lib/eventually.js';
import { startNodeProcess, type RunningProcess } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, peakRssMb, type BenchContext } from '../context.js';
import type { BenchReport } from '../report.js';
import { drainQueue, fillQueue, startPayonceWorker, workerEnv } from '../worker-runs.js';

/** Starts one of the bench's own workers (`bench/*.ts`) on `queueName`, tracked, and waits until it is ready. */
async function startBenchWorker(ctx: BenchContext, script: string, queueName: string, profileName: string) {
  const worker = ctx.track(startNodeProcess(script, workerEnv(ctx, queueName), ctx.profiled(profileName)));
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
 * Fills a paused queue of its own with the plan's jobs, starts a worker on it with `start` (which
 * tracks it), and drains the queue: jobs/s, CPU per job and the worker's peak memory.
 */
async function drainWith(
  ctx: BenchContext,
  name: string,
  start: (queueName: string) => Promise<RunningProcess>,
  options: { claims: boolean },
) {
  const queueName = `${name}_${randomSuffix()}`;
  const { queue, jobs } = await fillQueue(ctx, queueName, ctx.plan.workerJobs, options);
  const worker = await start(queueName);
  const { jobsPerSecond, cpu } = await drainQueue(ctx, queue, jobs.length, worker.pid);
  const workerPeakRssMb = await peakRssMb(worker.pid);
  await ctx.stop(worker);
  return { jobs, jobsPerSecond, cpu, workerPeakRssMb };
}

/**
 * Worker throughput with no payment delay: payonce's worker against the naive worker, with a
 * bare BullMQ worker and raw inserts of the same rows as floors. Checks that payonce's and the
 * naive worker wrote every payment, so a fast run that dropped jobs cannot count.
 */
export async function measureWorker(ctx: BenchContext) {
  const { plan, database, profiled } = ctx;
  log('worker throughput');
  const paymentsWritten = async (jobs: Array<{ purchaseId: string }>, who: string) => {
    const ids = jobs.map((job) => job.purchaseId);
    const [{ n }] = (await database.db('payments').whereIn('id', ids).count({ n: '*' })) as [{ n: string }];
    if (Number(n) !== ids.length) throw new Error(`${who} wrote ${n} of ${ids.length} payments`);
  };

  // The bare and the naive worker read nothing of payonce's claims: their jobs are only enqueued.
  const bare = await drainWith(
    ctx,
    'bare',
    (queueName) => startBenchWorker(ctx, 'bench/bare-worker.ts', queueName, 'bare-worker'),
    { claims: false },
  );
  const naive = await drainWith(
    ctx,
    'naive',
    (queueName) => startBenchWorker(ctx, 'bench/naive-worker.ts', queueName, 'naive-worker'),
    { claims: false },
  );
  await paymentsWritten(naive.jobs, 'the naive worker');
  const payonce = await drainWith(
    ctx,
    'real',
    async (queueName) =>
      ctx.track(await startPayonceWorker(ctx, queueName, workerEnv(ctx, queueName), profiled('worker-throughput'))),
    { claims: true },
  );
  await paymentsWritten(payonce.jobs, "payonce's worker");

  // Raw inserts: the same rows, one insert per row, 50 at a time on a pool of the worker's size.
  const rawRows = payonce.jobs.map((job) => ({
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

  const report: BenchReport['worker'] = {
    jobs: plan.workerJobs,
    bareJobsPerSecond: Math.round(bare.jobsPerSecond),
    naiveJobsPerSecond: Math.round(naive.jobsPerSecond),
    workerJobsPerSecond: Math.round(payonce.jobsPerSecond),
    rawInsertsPerSecond: Math.round(rawInsertsPerSecond),
    ratioToBare: payonce.jobsPerSecond / bare.jobsPerSecond,
    ratioToNaive: payonce.jobsPerSecond / naive.jobsPerSecond,
    ratioToRawInserts: payonce.jobsPerSecond / rawInsertsPerSecond,
    cpu: { bare: bare.cpu, naive: naive.cpu, worker: payonce.cpu },
  };
  return {
    worker: report,
    workerPeakRssMb: payonce.workerPeakRssMb,
    bareWorkerPeakRssMb: bare.workerPeakRssMb,
    naiveWorkerPeakRssMb: naive.workerPeakRssMb,
  };
}
