import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createIdempotencyStore } from '../src/shared/purchase/idempotency.js';
import type { PurchaseJob } from '../src/shared/purchase/purchase.js';
import { createPurchaseStateStore } from '../src/shared/purchase/purchase-state-store.js';
import { bullmqPrefix, purchaseProducerFromConfig } from '../src/shared/queue/bullmq-purchase-producer.js';
import { summarize } from '../scripts/burst/stats.js';
import { startApi, startNodeProcess, startWorker, freePort, type RunningProcess } from '../test/support/processes.js';
import { createTestDatabase, deleteKeys, eventually, randomSuffix, testConfig, TEST_REDIS_URL, type TestDatabase } from '../test/support/services.js';
import { redisServerPid, startCpuMeter, type CpuUse } from './cpu.js';
import { pacedPurchases, purchaseLoad, type LoadResult } from './load.js';
import { renderMarkdown, renderTable, type BenchReport } from './report.js';

/**
 * `npm run bench [-- --quick]`: measures payonce against baselines measured in the same run on
 * the same machine, Redis and Postgres, and writes BENCHMARKS.md / BENCHMARKS.json (full runs
 * only). Everything it starts (database, key prefix, queues, processes) is its own and is
 * removed at the end. `--no-write` prints the figures without recording them. `--profile DIR` also writes a CPU profile of each process under test and
 * each baseline into DIR (open them as flame graphs in Chrome DevTools or speedscope, or
 * summarise them with `npm run bench:profile -- DIR/*.cpuprofile`); such a run records nothing.
 */
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const quick = args.quick;
// Profiles slow the processes down: a profiling run records no figures.
const profileDir = args.profile ? resolve(args.profile) : undefined;
const write = !quick && !args['no-write'] && !profileDir;
/** node's arguments for a process under test: a CPU profile named after it with --profile. */
const profiled = (name: string) =>
  profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];

const plan = quick
  ? { seconds: 1, warmup: 1, connections: 20, rounds: 1, workerJobs: 200, addJobs: 2_000, e2eRate: 100, e2eSeconds: 1, scaleDelayMs: 100, scaleRounds: 3, concurrencies: [20], processes: [2] }
  : { seconds: 10, warmup: 3, connections: 50, rounds: 2, workerJobs: 10_000, addJobs: 10_000, e2eRate: 500, e2eSeconds: 10, scaleDelayMs: 1000, scaleRounds: 5, concurrencies: [10, 100, 1000], processes: [1, 2, 4] };

const log = (line: string) => console.error(`[bench] ${line}`);
const silent = pino({ level: 'silent' });

/** Peak resident memory of a process (VmHWM), in MB. */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** Runs `baseline` and `subject` alternately, `rounds` times each, and keeps each one's best. */
async function compare(
  rounds: number,
  baseline: () => Promise<LoadResult>,
  subject: () => Promise<LoadResult>,
): Promise<{ baseline: LoadResult; subject: LoadResult }> {
  let best: { baseline?: LoadResult; subject?: LoadResult } = {};
  for (let round = 0; round < rounds; round++) {
    const b = await baseline();
    const s = await subject();
    if (!best.baseline || b.requestsPerSecond > best.baseline.requestsPerSecond) best.baseline = b;
    if (!best.subject || s.requestsPerSecond > best.subject.requestsPerSecond) best.subject = s;
  }
  return best as { baseline: LoadResult; subject: LoadResult };
}

async function main(): Promise<void> {
  const started = Date.now();
  const database = await createTestDatabase();
  const prefix = `bench_${randomSuffix()}`;
  const processes: RunningProcess[] = [];
  const inspector = new Redis(TEST_REDIS_URL);
  const queues: Queue[] = [];
  try {
    const redisPid = await redisServerPid(() => inspector.info('server'));
    const users = await database.db('users')
      .insert(Array.from({ length: 1000 }, (_, i) => ({ username: `bench_${i}` })))
      .returning('id');
    const [product] = await database.db('products').insert({ name: 'bench', price: 999 }).returning('id');
    const productId = (product as { id: number }).id;
    const bodies = users.map((row) => ({ userId: (row as { id: number }).id, productId }));

    /** The `n`-th purchase job of a queue, as the API would enqueue it. */
    const benchJob = (queueName: string, n: number): PurchaseJob => ({
      purchaseId: randomUUID(),
      userId: bodies[n % bodies.length]!.userId,
      productId,
      amount: 999,
      idempotencyKey: `user:${bodies[n % bodies.length]!.userId}:key:${queueName}-${n}`,
      acceptedAt: new Date().toISOString(),
    });

    const env = (extra: Record<string, string> = {}) => ({
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      ...extra,
    });
    const track = <T extends RunningProcess>(running: T): T => {
      processes.push(running);
      return running;
    };
    const stop = async (running: RunningProcess) => {
      await running.stop();
      processes.splice(processes.indexOf(running), 1);
    };

    // 1 + 2. Accept and duplicate paths against the bare Fastify baseline.
    log('accept and duplicate paths');
    const basePort = await freePort();
    const bare = track(startNodeProcess('bench/bare-fastify.ts', { PORT: String(basePort), LOG_LEVEL: 'warn' }, profiled('bare-fastify')));
    const bareUrl = `http://127.0.0.1:${basePort}`;
    await eventually(async () => ((await fetch(`${bareUrl}/health/live`).catch(() => null))?.ok ? true : undefined), {
      timeoutMs: 20_000,
      what: 'the baseline server',
    });
    const api = track(await startApi(env({ QUEUE_NAME: `accept_${randomSuffix()}` }), { nodeArgs: profiled('api-accept') }));
    const load = (url: string, keys: 'distinct' | 'duplicate', seconds = plan.seconds) =>
      purchaseLoad({ url, connections: plan.connections, durationSeconds: seconds, bodies, keys });
    /** A load run with the CPU per request of every process taking part. */
    const measuredLoad = async (server: RunningProcess & { url: string }, keys: 'distinct' | 'duplicate') => {
      const meter = await startCpuMeter(server.pid, redisPid);
      const result = await load(server.url, keys);
      // Throughput counts only the answers the path is measured for: a 503 or a 4xx is not one.
      // With one key, payonce accepts the first request (202) and answers the rest 204.
      const expected = keys === 'duplicate' && server !== bareServer ? [202, 204] : [202];
      const unexpected = Object.keys(result.statusCounts).filter((status) => !expected.includes(Number(status)));
      if (result.errors > 0 || unexpected.length > 0 || (expected.length === 2 && (result.statusCounts['202'] ?? 0) > 1)) {
        throw new Error(`${server.url} answered ${JSON.stringify(result.statusCounts)} with ${result.errors} errors`);
      }
      return { ...result, cpu: await meter.stop(result.requests) };
    };
    const bareServer = { ...bare, url: bareUrl };
    await load(bareUrl, 'distinct', plan.warmup);
    await load(api.url, 'distinct', plan.warmup);
    const accept = await compare(plan.rounds, () => measuredLoad(bareServer, 'distinct'), () => measuredLoad(api, 'distinct'));
    const duplicate = await compare(plan.rounds, () => measuredLoad(bareServer, 'duplicate'), () => measuredLoad(api, 'duplicate'));
    const apiRssAccept = await peakRssMb(api.pid);
    await stop(api);
    await stop(bare);

    // BullMQ's add on its own, with the producer's options: the floor of any accept path that
    // enqueues one BullMQ job per purchase. Its client runs in this process.
    log('BullMQ add alone');
    const enqueueOnly = async (count: number): Promise<CpuUse> => {
      const queueName = `add_${randomSuffix()}`;
      const config = testConfig({ DATABASE_URL: database.url, REDIS_KEY_PREFIX: prefix, QUEUE_NAME: queueName });
      const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
      const producer = purchaseProducerFromConfig(config, connection);
      const meter = await startCpuMeter(process.pid, redisPid);
      let next = 0;
      await Promise.all(
        Array.from({ length: plan.connections }, async () => {
          while (next < count) await producer.enqueuePurchase(benchJob(queueName, next++));
        }),
      );
      const used = await meter.stop(count);
      await producer.close();
      connection.disconnect();
      // The client's CPU is this process's: report it as the process under test.
      return { ...used, process: used.loadGenerator, loadGenerator: 0 };
    };
    // (Enough adds in quick mode too for /proc's 10 ms CPU ticks to see Redis's share.)
    await enqueueOnly(plan.addJobs / 10);
    const bullmqAddCpu = await enqueueOnly(plan.addJobs);

    // 3. Worker throughput with no payment delay, against a bare BullMQ worker and raw inserts.
    log('worker throughput');
    const fill = async (queueName: string, count: number) => {
      const config = testConfig({ DATABASE_URL: database.url, REDIS_KEY_PREFIX: prefix, QUEUE_NAME: queueName });
      const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
      const states = createPurchaseStateStore({ redis: connection, prefix });
      const idempotency = createIdempotencyStore({ redis: connection, prefix, ttlSeconds: 300, stateTtlSeconds: 3600, stateKey: states.stateKey });
      const producer = purchaseProducerFromConfig(config, connection);
      const queue = new Queue(queueName, { connection: inspector, prefix: bullmqPrefix(prefix) });
      queues.push(queue);
      await queue.pause();
      const jobs = Array.from({ length: count }, (_, i) => benchJob(queueName, i));
      // The API's own steps: claim (with the in-flight record), enqueue, confirm.
      for (let i = 0; i < jobs.length; i += 200) {
        await Promise.all(
          jobs.slice(i, i + 200).map(async (job) => {
            await idempotency.claimIdempotencyKey(job.idempotencyKey, { purchaseId: job.purchaseId, fingerprint: 'bench' }, {
              userId: job.userId,
              productId: job.productId,
              amount: job.amount,
              status: 'queued',
              createdAt: job.acceptedAt,
            });
            await producer.enqueuePurchase(job);
            await idempotency.confirmClaim(job.idempotencyKey, job.purchaseId);
          }),
        );
      }
      await producer.close();
      connection.disconnect();
      return { queue, jobs };
    };
    /**
     * Drains a filled queue; returns jobs/s and the CPU per job of every process taking part.
     * With `steady`, also the rate between the `from`-th and the `to`-th completion, which
     * leaves out the ramp-up and the tail.
     */
    const drain = async (
      queue: Queue,
      count: number,
      workerPid: number,
      steady?: { from: number; to: number },
    ): Promise<{ jobsPerSecond: number; steadyJobsPerSecond?: number; cpu: CpuUse }> => {
      const meter = await startCpuMeter(workerPid, redisPid);
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
    };
    /** Starts a payonce worker on `queueName` and waits until BullMQ lists one more worker. */
    const startPayonceWorker = async (queueName: string, workerEnvironment: Record<string, string>, nodeArgs: string[] = []) => {
      const queue = new Queue(queueName, { connection: inspector, prefix: bullmqPrefix(prefix) });
      const before = await queue.getWorkersCount();
      const running = await startWorker(workerEnvironment, { ready: async () => (await queue.getWorkersCount()) > before, nodeArgs });
      await queue.close();
      return running;
    };
    const workerEnv = (queueName: string, extra: Record<string, string> = {}) =>
      env({ QUEUE_NAME: queueName, PAYMENT_DELAY_MS: '0', WORKER_CONCURRENCY: '50', ...extra });

    const bareQueueName = `bare_${randomSuffix()}`;
    const bareFill = await fill(bareQueueName, plan.workerJobs);
    const bareWorker = track(startNodeProcess('bench/bare-worker.ts', workerEnv(bareQueueName), profiled('bare-worker')));
    await eventually(() => (bareWorker.output().includes('worker started') ? true : undefined), { timeoutMs: 20_000, what: 'the bare worker' });
    const { jobsPerSecond: bareJobsPerSecond, cpu: bareWorkerCpu } = await drain(bareFill.queue, plan.workerJobs, bareWorker.pid);
    const bareWorkerRss = await peakRssMb(bareWorker.pid);
    await stop(bareWorker);

    const realQueueName = `real_${randomSuffix()}`;
    const realFill = await fill(realQueueName, plan.workerJobs);
    const worker = track(await startPayonceWorker(realQueueName, workerEnv(realQueueName), profiled('worker-throughput')));
    const { jobsPerSecond: workerJobsPerSecond, cpu: workerCpu } = await drain(realFill.queue, plan.workerJobs, worker.pid);
    const workerRssThroughput = await peakRssMb(worker.pid);
    await stop(worker);
    const written = Number(
      ((await database.db('payments').whereIn('id', realFill.jobs.map((job) => job.purchaseId)).count({ n: '*' })) as [{ n: string }])[0].n,
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

    // 4. End-to-end latency at a fixed offered load, simulated delay subtracted.
    log(`end-to-end latency at ${plan.e2eRate}/s`);
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
    const e2eApi = track(await startApi(env({ QUEUE_NAME: e2eQueue }), { nodeArgs: profiled('api-end-to-end') }));
    const e2eWorker = track(
      await startPayonceWorker(
        e2eQueue,
        env({ QUEUE_NAME: e2eQueue, PAYMENT_DELAY_MS: String(e2eDelay), WORKER_CONCURRENCY: '200' }),
        profiled('worker-end-to-end'),
      ),
    );
    // Warm both processes up first (JIT, pools, connections), as the accept phase does, and
    // let the warm-up's purchases finish before measuring.
    const warmup = await pacedPurchases({ url: e2eApi.url, rate: plan.e2eRate, seconds: plan.warmup, bodies });
    await allWritten(warmup.accepted);
    const apiMeter = await startCpuMeter(e2eApi.pid, redisPid);
    const workerMeter = await startCpuMeter(e2eWorker.pid, redisPid);
    const { accepted, sentPerSecond } = await pacedPurchases({
      url: e2eApi.url,
      rate: plan.e2eRate,
      seconds: plan.e2eSeconds,
      bodies,
    });
    // Per purchase, while sending (the worker keeps up, so this is nearly all of its work).
    const e2eApiCpu = await apiMeter.stop(accepted.length);
    const e2eCpu: CpuUse = { ...e2eApiCpu, process: e2eApiCpu.process + (await workerMeter.stop(accepted.length)).process };
    await allWritten(accepted);
    const e2eRows = (await database.db('payments').whereIn('id', accepted).select('id', 'accepted_at', 'updated_at')) as Array<{
      id: string;
      accepted_at: Date;
      updated_at: Date;
    }>;
    const overhead = summarize(e2eRows.map((row) => row.updated_at.getTime() - row.accepted_at.getTime() - e2eDelay));
    // Where that time went: waiting in the queue (accepted -> a worker took the job, BullMQ's
    // processedOn) and in the worker (taken -> payment row written, delay subtracted).
    const e2eJobs = new Queue(e2eQueue, { connection: inspector, prefix: bullmqPrefix(prefix) });
    const pickedUp = new Map<string, number>();
    for (let i = 0; i < accepted.length; i += 500) {
      const jobs = await Promise.all(accepted.slice(i, i + 500).map((id) => e2eJobs.getJob(id)));
      for (const job of jobs) if (job?.id && job.processedOn) pickedUp.set(job.id, job.processedOn);
    }
    await e2eJobs.close();
    const timed = e2eRows.filter((row) => pickedUp.has(row.id));
    const queueWait = summarize(timed.map((row) => pickedUp.get(row.id)! - row.accepted_at.getTime()));
    const inWorker = summarize(timed.map((row) => row.updated_at.getTime() - pickedUp.get(row.id)! - e2eDelay));
    const apiRssE2e = await peakRssMb(e2eApi.pid);
    const workerRssE2e = await peakRssMb(e2eWorker.pid);
    await stop(e2eWorker);
    await stop(e2eApi);

    // 5. Scaling while the simulated gateway is the bottleneck, against Little's law.
    log('scaling');
    const scaling: BenchReport['scaling'] = [];
    const scale = async (label: string, workers: number, concurrency: number) => {
      const queueName = `scale_${randomSuffix()}`;
      const jobs = workers * concurrency * plan.scaleRounds;
      const { queue } = await fill(queueName, jobs);
      const running: RunningProcess[] = [];
      for (let i = 0; i < workers; i++) {
        const extra = { PAYMENT_DELAY_MS: String(plan.scaleDelayMs), WORKER_CONCURRENCY: String(concurrency) };
        running.push(track(await startPayonceWorker(queueName, workerEnv(queueName, extra))));
      }
      // Little's law describes a steady state: measure between the first and the last round's
      // worth of completions, leaving out the ramp-up (every slot fetching its first job) and
      // the tail (slots emptying), which are reported for context as the whole drain's rate.
      const inFlight = workers * concurrency;
      const { jobsPerSecond, steadyJobsPerSecond } = await drain(queue, jobs, running[0]!.pid, {
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
    const perProcess = quick ? 10 : 25;
    for (const workers of plan.processes) await scale(`${workers} process(es) x ${perProcess}`, workers, perProcess);
    for (const concurrency of plan.concurrencies) await scale(`1 process x ${concurrency}`, 1, concurrency);

    const report: BenchReport = {
      date: new Date().toISOString(),
      quick,
      machine: describeMachine(),
      plan,
      accept: { ...accept, ratio: accept.subject.requestsPerSecond / accept.baseline.requestsPerSecond },
      duplicate: { ...duplicate, ratio: duplicate.subject.requestsPerSecond / duplicate.baseline.requestsPerSecond },
      bullmqAddCpu,
      worker: {
        jobs: plan.workerJobs,
        bareJobsPerSecond: Math.round(bareJobsPerSecond),
        workerJobsPerSecond: Math.round(workerJobsPerSecond),
        rawInsertsPerSecond: Math.round(rawInsertsPerSecond),
        ratioToBare: workerJobsPerSecond / bareJobsPerSecond,
        ratioToRawInserts: workerJobsPerSecond / rawInsertsPerSecond,
        cpu: { bare: bareWorkerCpu, worker: workerCpu },
      },
      endToEnd: {
        offeredRate: plan.e2eRate,
        achievedRate: sentPerSecond,
        purchases: accepted.length,
        delayMs: e2eDelay,
        overheadMs: overhead,
        queueWaitMs: queueWait,
        inWorkerMs: inWorker,
        cpu: e2eCpu,
      },
      scaling,
      memory: {
        apiPeakRssMbAccept: apiRssAccept,
        apiPeakRssMbEndToEnd: apiRssE2e,
        workerPeakRssMbThroughput: workerRssThroughput,
        workerPeakRssMbEndToEnd: workerRssE2e,
        bareWorkerPeakRssMb: bareWorkerRss,
      },
      seconds: Math.round((Date.now() - started) / 1000),
    };
    console.log(renderTable(report));
    if (write) {
      const previous = await readFile('BENCHMARKS.md', 'utf8').catch(() => '');
      await writeFile('BENCHMARKS.md', renderMarkdown(report, previous));
      await writeFile('BENCHMARKS.json', `${JSON.stringify(report, null, 2)}\n`);
      log('wrote BENCHMARKS.md and BENCHMARKS.json');
    }
  } finally {
    for (const running of processes.reverse()) await running.stop('SIGKILL').catch(() => {});
    for (const queue of queues) await queue.close().catch(() => {});
    inspector.disconnect();
    await deleteKeys(prefix).catch(() => {});
    await database.drop().catch(() => {});
  }
}

function describeMachine(): BenchReport['machine'] {
  const version = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return 'unknown';
    }
  };
  return {
    cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: version('psql', ['--version']),
    redis: version('redis-server', ['--version']),
  };
}

await main();
