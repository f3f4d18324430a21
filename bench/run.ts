import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { log, openBenchContext, type Backend } from './context.js';
import { describeMachine } from './machine.js';
import { measureKeyCheck } from './key-check.js';
import { measureAcceptPaths } from './phases/accept.js';
import { measureBullmqAdd } from './phases/bullmq-add.js';
import { measureEndToEnd } from './phases/end-to-end.js';
import { measureScaling } from './phases/scaling.js';
import { measureWorker } from './phases/worker.js';
import { renderMarkdown, renderTable, type BackendFigures, type BenchReport } from './report.js';

/**
 * `npm run bench [-- --quick]`: measures payonce against the naive design a user would write
 * instead (bench/naive-service.ts, bench/naive-worker.ts) and against bare floors, all in the
 * same run on the same machine, on each store backend (Redis, and Postgres without Redis), and
 * writes BENCHMARKS.md / BENCHMARKS.json (full runs only). Everything it starts (database, key prefix, queues, processes) is its own
 * and is removed at the end. `--no-write` prints the figures without recording them.
 * `--profile DIR` also writes a CPU profile of each process under test and each baseline into
 * DIR (open them as flame graphs in Chrome DevTools or speedscope, or summarise them with
 * `npm run bench:profile -- DIR/*.cpuprofile`); such a run records nothing.
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

async function main(): Promise<void> {
  const started = Date.now();
  const bench = await openBenchContext({ quick, profileDir });
  try {
    // One phase at a time, each with its processes stopped before the next starts, so no
    // phase's figures include another's CPU; within a phase, the Redis backend then Postgres.
    const paths = await measureAcceptPaths(bench);
    const keyCheckMicros = await measureKeyCheck(quick ? 20_000 : 200_000);
    const bullmqAddCpu = {
      redis: await measureBullmqAdd(bench, 'redis'),
      postgres: await measureBullmqAdd(bench, 'postgres'),
    };
    const throughput = await measureWorker(bench);
    const endToEnd = {
      redis: await measureEndToEnd(bench, 'redis'),
      postgres: await measureEndToEnd(bench, 'postgres'),
    };
    const scaling = { redis: await measureScaling(bench, 'redis'), postgres: await measureScaling(bench, 'postgres') };
    const figures = (backend: Backend): BackendFigures => ({
      accept: paths[backend].accept,
      duplicate: paths[backend].duplicate,
      bullmqAddCpu: bullmqAddCpu[backend],
      worker: throughput[backend].worker,
      endToEnd: endToEnd[backend].endToEnd,
      scaling: scaling[backend],
      memory: {
        apiPeakRssMbAccept: paths[backend].apiPeakRssMb,
        naiveApiPeakRssMbAccept: paths[backend].naiveApiPeakRssMb,
        apiPeakRssMbEndToEnd: endToEnd[backend].apiPeakRssMb,
        workerPeakRssMbThroughput: throughput[backend].workerPeakRssMb,
        workerPeakRssMbEndToEnd: endToEnd[backend].workerPeakRssMb,
        bareWorkerPeakRssMb: throughput[backend].bareWorkerPeakRssMb,
        naiveWorkerPeakRssMb: throughput[backend].naiveWorkerPeakRssMb,
      },
    });
    // The Redis backend's figures at the top level, as every recorded run has them.
    const report: BenchReport = {
      date: new Date().toISOString(),
      quick,
      machine: describeMachine(),
      plan: bench.plan,
      ...figures('redis'),
      limits: paths.redis.limiterOff && { keyCheckMicros, limiterOff: paths.redis.limiterOff },
      postgres: figures('postgres'),
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
    await bench.close();
  }
}

await main();
