import { randomUUID } from 'node:crypto';
import { eventually } from '../../scripts/lib/eventually.js';
import { startNodeProcess } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, peakRssMb, type BenchContext } from '../context.js';
import type { BenchReport } from '../report.js';
import { drainQueue, fillQueue, startPayonceWorker, workerEnv } from '../worker-runs.js';

/**
 * Worker throughput with no payment delay, against a bare BullMQ worker on the same queue
 * options and against raw inserts of the same rows. Checks that payonce's worker wrote every
 * payment, so a fast run that dropped jobs cannot count.
 */
export async function measureWorker(ctx: BenchContext) {
  const { plan, database, track, stop, profiled } = ctx;
  log('worker throughput');
  const bareQueueName = `bare_${randomSuffix()}`;
  const bareFill = await fillQueue(ctx, bareQueueName, plan.workerJobs);
  const bareWorker = track(
    startNodeProcess('bench/bare-worker.ts', workerEnv(ctx, bareQueueName), profiled('bare-worker')),
  );
  await eventually(() => (bareWorker.output().includes('worker started') ? true : undefined), {
    timeoutMs: 20_000,
    what: 'the bare worker',
  });
  const { jobsPerSecond: bareJobsPerSecond, cpu: bareWorkerCpu } = await drainQueue(
    ctx,
    bareFill.queue,
    plan.workerJobs,
    bareWorker.pid,
  );
  const bareWorkerPeakRssMb = await peakRssMb(bareWorker.pid);
  await stop(bareWorker);

  const realQueueName = `real_${randomSuffix()}`;
  const realFill = await fillQueue(ctx, realQueueName, plan.workerJobs);
  const worker = track(
    await startPayonceWorker(ctx, realQueueName, workerEnv(ctx, realQueueName), profiled('worker-throughput')),
  );
  const { jobsPerSecond: workerJobsPerSecond, cpu: workerCpu } = await drainQueue(
    ctx,
    realFill.queue,
    plan.workerJobs,
    worker.pid,
  );
  const workerPeakRssMb = await peakRssMb(worker.pid);
  await stop(worker);
  const written = Number(
    (
      (await database
        .db('payments')
        .whereIn(
          'id',
          realFill.jobs.map((job) => job.purchaseId),
        )
        .count({ n: '*' })) as [{ n: string }]
    )[0].n,
  );
  if (written !== plan.workerJobs) throw new Error(`worker wrote ${written} of ${plan.workerJobs} payments`);

  // Raw inserts: the same rows, one insert per row, 50 at a time on a pool of the worker's size.
  const rawRows = realFill.jobs.map((job) => ({
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
    bareJobsPerSecond: Math.round(bareJobsPerSecond),
    workerJobsPerSecond: Math.round(workerJobsPerSecond),
    rawInsertsPerSecond: Math.round(rawInsertsPerSecond),
    ratioToBare: workerJobsPerSecond / bareJobsPerSecond,
    ratioToRawInserts: workerJobsPerSecond / rawInsertsPerSecond,
    cpu: { bare: bareWorkerCpu, worker: workerCpu },
  };
  return { worker: report, workerPeakRssMb, bareWorkerPeakRssMb };
}
