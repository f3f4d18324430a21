import type { RunningProcess } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, peakRssMb, type BenchContext } from '../context.js';
import type { BenchReport } from '../report.js';
import { drainQueue, fillQueue, startPayonceWorker, workerEnv } from '../worker-runs.js';

/**
 * Scaling while the simulated gateway is the bottleneck, against Little's law: more worker
 * processes at a fixed concurrency, then one process at rising concurrency.
 */
export async function measureScaling(ctx: BenchContext): Promise<BenchReport['scaling']> {
  const { plan, track, stop } = ctx;
  log('scaling');
  const scaling: BenchReport['scaling'] = [];
  const scale = async (label: string, workers: number, concurrency: number) => {
    const queueName = `scale_${randomSuffix()}`;
    const jobs = workers * concurrency * plan.scaleRounds;
    const { queue } = await fillQueue(ctx, queueName, jobs);
    const running: RunningProcess[] = [];
    for (let i = 0; i < workers; i++) {
      const extra = { PAYMENT_DELAY_MS: String(plan.scaleDelayMs), WORKER_CONCURRENCY: String(concurrency) };
      running.push(track(await startPayonceWorker(ctx, queueName, workerEnv(ctx, queueName, extra))));
    }
    // Little's law describes a steady state: measure between the first and the last round's
    // worth of completions, leaving out the ramp-up (every slot fetching its first job) and
    // the tail (slots emptying), which are reported for context as the whole drain's rate.
    const inFlight = workers * concurrency;
    const { jobsPerSecond, steadyJobsPerSecond } = await drainQueue(ctx, queue, jobs, running[0]!.pid, {
      from: inFlight,
      to: jobs - inFlight,
    });
    const rss = Math.max(...(await Promise.all(running.map((p) => peakRssMb(p.pid)))));
    for (const p of running) await stop(p);
    // Little's law: throughput = jobs in flight / time each spends in the system.
    const predicted = inFlight / (plan.scaleDelayMs / 1000);
    const steadyRate = steadyJobsPerSecond ?? jobsPerSecond;
    scaling.push({
      label,
      workers,
      concurrency,
      jobs,
      jobsPerSecond: Math.round(steadyRate),
      drainJobsPerSecond: Math.round(jobsPerSecond),
      predicted,
      ratio: steadyRate / predicted,
      workerPeakRssMb: rss,
    });
  };
  const perProcess = ctx.quick ? 10 : 25;
  for (const workers of plan.processes) await scale(`${workers} process(es) x ${perProcess}`, workers, perProcess);
  for (const concurrency of plan.concurrencies) await scale(`1 process x ${concurrency}`, 1, concurrency);
  return scaling;
}
