import { summarize } from '../../scripts/burst/stats.js';
import { eventually } from '../../scripts/lib/eventually.js';
import { startApi } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, peakRssMb, type Backend, type BenchContext } from '../context.js';
import type { CpuUse } from '../cpu.js';
import { pacedPurchases } from '../load.js';
import type { BenchReport } from '../report.js';
import { startPayonceWorker } from '../worker-runs.js';

/**
 * End-to-end latency at a fixed offered load through the API and a worker on `backend`,
 * simulated payment delay subtracted, split into the time queued and the time in the worker.
 */
export async function measureEndToEnd(ctx: BenchContext, backend: Backend) {
  const { plan, database, bodies, track, stop, env, profiled } = ctx;
  log(`end-to-end latency at ${plan.e2eRate}/s on ${backend}`);
  const suffix = backend === 'redis' ? '' : `-${backend}`;
  const e2eDelay = 50;
  const allWritten = (ids: string[]) =>
    eventually(
      async () => {
        const [{ n }] = (await database.db('payments').whereIn('id', ids).count({ n: '*' })) as [{ n: string }];
        return Number(n) >= ids.length ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100, what: 'the end-to-end purchases to finish' },
    );
  const e2eQueue = `e2e_${randomSuffix()}`;
  const e2eApi = track(
    await startApi(env(backend, { QUEUE_NAME: e2eQueue }), { nodeArgs: profiled(`api-end-to-end${suffix}`) }),
  );
  const e2eWorker = track(
    await startPayonceWorker(
      ctx,
      backend,
      e2eQueue,
      env(backend, { QUEUE_NAME: e2eQueue, PAYMENT_DELAY_MS: String(e2eDelay), WORKER_CONCURRENCY: '200' }),
      profiled(`worker-end-to-end${suffix}`),
    ),
  );
  // Warm both processes up first (JIT, pools, connections), as the accept phase does, and
  // let the warm-up's purchases finish before measuring.
  const warmup = await pacedPurchases({
    url: e2eApi.url,
    rate: plan.e2eRate,
    seconds: plan.warmup,
    bodies,
    apiKey: ctx.apiKey,
  });
  await allWritten(warmup.accepted);
  const apiMeter = await ctx.meterCpu(e2eApi.pid, backend);
  // Only its `process` is read: the API's meter counts the rest.
  const workerMeter = await ctx.meterCpu(e2eWorker.pid, backend);
  const { accepted, sentPerSecond } = await pacedPurchases({
    url: e2eApi.url,
    rate: plan.e2eRate,
    seconds: plan.e2eSeconds,
    bodies,
    apiKey: ctx.apiKey,
  });
  // Per purchase, while sending (the worker keeps up, so this is nearly all of its work).
  const e2eApiCpu = await apiMeter.stop(accepted.length);
  const e2eCpu: CpuUse = {
    ...e2eApiCpu,
    process: e2eApiCpu.process + (await workerMeter.stop(accepted.length)).process,
  };
  await allWritten(accepted);
  const e2eRows: Array<{ id: string; accepted_at: Date; updated_at: Date }> = await database
    .db('payments')
    .whereIn('id', accepted)
    .select('id', 'accepted_at', 'updated_at');
  const overhead = summarize(e2eRows.map((row) => row.updated_at.getTime() - row.accepted_at.getTime() - e2eDelay));
  // Where that time went: waiting in the queue (accepted -> a worker took the job, BullMQ's
  // processedOn) and in the worker (taken -> payment row written, delay subtracted).
  const e2eJobs = ctx.openQueue(e2eQueue, backend);
  const pickedUp = new Map<string, number>();
  for (let i = 0; i < accepted.length; i += 500) {
    const jobs = await Promise.all(accepted.slice(i, i + 500).map((id) => e2eJobs.getJob(id)));
    for (const job of jobs) if (job?.id && job.processedOn) pickedUp.set(job.id, job.processedOn);
  }
  await e2eJobs.close();
  const timed = e2eRows.filter((row) => pickedUp.has(row.id));
  const queueWait = summarize(timed.map((row) => pickedUp.get(row.id)! - row.accepted_at.getTime()));
  const inWorker = summarize(timed.map((row) => row.updated_at.getTime() - pickedUp.get(row.id)! - e2eDelay));
  const apiPeakRssMb = await peakRssMb(e2eApi.pid);
  const workerPeakRssMb = await peakRssMb(e2eWorker.pid);
  await stop(e2eWorker);
  await stop(e2eApi);

  const report: BenchReport['endToEnd'] = {
    offeredRate: plan.e2eRate,
    achievedRate: sentPerSecond,
    purchases: accepted.length,
    delayMs: e2eDelay,
    overheadMs: overhead,
    queueWaitMs: queueWait,
    inWorkerMs: inWorker,
    cpu: e2eCpu,
  };
  return { endToEnd: report, apiPeakRssMb, workerPeakRssMb };
}
