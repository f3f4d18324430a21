import type { RunningProcess } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, peakRssMb, type Backend, type BenchContext } from '../context.js';
import type { BenchReport } from '../report.js';
import { drainQueue, fillQueue, startPayonceWorker, workerEnv } from '../worker-runs.js';

/**
 * Postgres connections each pool of a scaling worker on the Postgres backend opens at most
 * (DATABASE_POOL_MAX: payonce's knex pool and BullMQ's worker pool), against the default 10.
 * A worker process there holds that twice, plus the gateway's 4, BullMQ's LISTEN connection and
 * the reconciler's two pools of 2: 19 instead of 29, so two processes and the bench stay near
 * 50 of the server's 100. At a 1 s payment delay, 100 jobs/s need a few connections at once.
 */
const SCALING_POSTGRES_POOL_MAX = 5;

/**
 * Scaling while the simulated gateway is the bottleneck, against Little's law, on `backend`:
 * more worker processes at a fixed concurrency, then one process at rising concurrency (the
 * plan's matrix for that backend).
 */
export async function measureScaling(ctx: BenchContext, backend: Backend): Promise<BenchReport['scaling']> {
  const { plan, track, stop } = ctx;
  log(`scaling on ${backend}`);
  const scaling: BenchReport['scaling'] = [];
  const scale = async (label: string, workers: number, concurrency: number) => {
    const queueName = `scale_${randomSuffix()}`;
    const jobs = workers * concurrency * plan.scaleRounds;
    const { queue } = await fillQueue(ctx, backend, queueName, jobs);
    const running: RunningProcess[] = [];
    for (let i = 0; i < workers; i++) {
      const extra = {
        PAYMENT_DELAY_MS: String(plan.scaleDelayMs),
        WORKER_CONCURRENCY: String(concurrency),
        ...(backend === 'postgres' ? { DATABASE_POOL_MAX: String(SCALING_POSTGRES_POOL_MAX) } : {}),
      };
      running.push(track(await startPayonceWorker(ctx, backend, queueName, workerEnv(ctx, backend, queueName, extra))));
    }
    // Little's law describes a steady state: measure between the first and the last round's
    // worth of completions, leaving out the ramp-up (every slot fetching its first job) and
    // the tail (slots emptying), which are reported for context as the whole drain's rate.
    const inFlight = workers * concurrency;
    const { jobsPerSecond, steadyJobsPerSecond } = await drainQueue(ctx, backend, queue, jobs, running[0]!.pid, {
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
  const { perProcess, processes, concurrencies } = plan.scaling[backend];
  for (const workers of processes) await scale(`${workers} process(es) x ${perProcess}`, workers, perProcess);
  for (const concurrency of concurrencies) await scale(`1 process x ${concurrency}`, 1, concurrency);
  return scaling;
}
