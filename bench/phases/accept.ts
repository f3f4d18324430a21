import { eventually } from '../../scripts/lib/eventually.js';
import { freePort, startApi, startNodeProcess, type RunningApi } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { bestOf, log, peakRssMb, type Backend, type BenchContext } from '../context.js';
import { purchaseLoad } from '../load.js';
import type { CpuUse } from '../cpu.js';
import type { PathComparison } from '../report.js';

/** Starts one of the bench's own servers (`bench/*.ts`) and waits until it answers /health/live. */
async function startBenchServer(
  ctx: BenchContext,
  script: string,
  environment: Record<string, string>,
  profileName: string,
): Promise<RunningApi> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = ctx.track({
    ...startNodeProcess(script, { ...environment, PORT: String(port) }, ctx.profiled(profileName)),
    url,
  });
  await eventually(
    async () => {
      if (server.child.exitCode !== null) throw new Error(`${script} exited early:\n${server.output()}`);
      return (await fetch(`${url}/health/live`).catch(() => null))?.ok ? true : undefined;
    },
    { timeoutMs: 20_000, what: script },
  );
  return server;
}

/** What the accept phase measured on one backend. */
export interface AcceptFigures {
  accept: PathComparison;
  duplicate: PathComparison;
  apiPeakRssMb: number;
  naiveApiPeakRssMb: number;
  /** payonce's two paths again with the rate limiter off (RATE_LIMIT_MAX=0), on Redis only. */
  limiterOff?: { accept: CpuUse; duplicate: CpuUse };
}

/**
 * The accept path (a fresh Idempotency-Key per request) and the duplicate path (one key
 * throughout) of payonce, of the naive service and of bare Fastify, in turn, on each backend:
 * payonce's API and the naive service on Redis, then both again on Postgres, bare Fastify (which
 * has no backend) measured beside each pair. Each path runs on the same processes, so the
 * duplicate path is measured on warm servers. Only one backend's processes run at a time,
 * which keeps the Postgres connections in use to one API's and one naive service's pools.
 */
export async function measureAcceptPaths(ctx: BenchContext): Promise<Record<Backend, AcceptFigures>> {
  const { plan, bodies, stop, env, profiled } = ctx;
  log('accept and duplicate paths');
  const bare = await startBenchServer(ctx, 'bench/bare-fastify.ts', { LOG_LEVEL: 'warn' }, 'bare-fastify');
  const load = (url: string, keys: 'distinct' | 'duplicate', seconds = plan.seconds) =>
    purchaseLoad({ url, connections: plan.connections, durationSeconds: seconds, bodies, keys, apiKey: ctx.apiKey });
  await load(bare.url, 'distinct', plan.warmup);

  const measureOn = async (backend: Backend): Promise<AcceptFigures> => {
    const suffix = backend === 'redis' ? '' : `-${backend}`;
    const naive = await startBenchServer(
      ctx,
      'bench/naive-service.ts',
      env(backend, { QUEUE_NAME: `naive_accept_${randomSuffix()}` }),
      `naive-api${suffix}`,
    );
    const api = ctx.track(
      await startApi(env(backend, { QUEUE_NAME: `accept_${randomSuffix()}` }), {
        nodeArgs: profiled(`api-accept${suffix}`),
      }),
    );
    /** A load run with the CPU per request of every process taking part. */
    const measuredLoad = async (server: RunningApi, keys: 'distinct' | 'duplicate') => {
      // Bare Fastify uses no backend; beside the Postgres pair Redis is not metered either.
      const meter = await ctx.meterCpu(server.pid, backend);
      const result = await load(server.url, keys);
      // Throughput counts only the answers the path is measured for: a 503 or a 4xx is not one.
      // With one key, payonce and the naive service accept the first request (202) and answer
      // the rest 204; bare Fastify answers everything 202.
      const expected = keys === 'duplicate' && server !== bare ? [202, 204] : [202];
      const unexpected = Object.keys(result.statusCounts).filter((status) => !expected.includes(Number(status)));
      if (
        result.errors > 0 ||
        unexpected.length > 0 ||
        (expected.length === 2 && (result.statusCounts['202'] ?? 0) > 1)
      ) {
        throw new Error(`${server.url} answered ${JSON.stringify(result.statusCounts)} with ${result.errors} errors`);
      }
      return { ...result, cpu: await meter.stop(result.requests) };
    };
    for (const server of [naive, api]) await load(server.url, 'distinct', plan.warmup);
    const runs = (keys: 'distinct' | 'duplicate') =>
      bestOf(plan.rounds, {
        bare: () => measuredLoad(bare, keys),
        naive: () => measuredLoad(naive, keys),
        payonce: () => measuredLoad(api, keys),
      });
    const accept = await runs('distinct');
    const duplicate = await runs('duplicate');
    const apiPeakRssMb = await peakRssMb(api.pid);
    const naiveApiPeakRssMb = await peakRssMb(naive.pid);
    await stop(api);
    await stop(naive);
    // The rate limiter's cost: the same paths on an API with RATE_LIMIT_MAX=0 (the key check stays).
    let limiterOff: AcceptFigures['limiterOff'];
    if (backend === 'redis') {
      const unlimited = ctx.track(
        await startApi(env(backend, { QUEUE_NAME: `unlimited_${randomSuffix()}`, RATE_LIMIT_MAX: '0' }), {
          nodeArgs: profiled('api-accept-unlimited'),
        }),
      );
      await load(unlimited.url, 'distinct', plan.warmup);
      limiterOff = {
        accept: (await measuredLoad(unlimited, 'distinct')).cpu,
        duplicate: (await measuredLoad(unlimited, 'duplicate')).cpu,
      };
      await stop(unlimited);
    }
    const comparison = ({ bare: baseline, naive, payonce: subject }: typeof accept): PathComparison => ({
      baseline,
      subject,
      ratio: subject.requestsPerSecond / baseline.requestsPerSecond,
      naive,
      ratioToNaive: subject.requestsPerSecond / naive.requestsPerSecond,
    });
    return {
      accept: comparison(accept),
      duplicate: comparison(duplicate),
      apiPeakRssMb,
      naiveApiPeakRssMb,
      limiterOff,
    };
  };

  const figures = { redis: await measureOn('redis'), postgres: await measureOn('postgres') };
  await stop(bare);
  return figures;
}
