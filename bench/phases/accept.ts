import { eventually } from '../../scripts/lib/eventually.js';
import { freePort, startApi, startNodeProcess, type RunningProcess } from '../../scripts/lib/processes.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { compare, log, peakRssMb, type BenchContext } from '../context.js';
import { startCpuMeter } from '../cpu.js';
import { purchaseLoad } from '../load.js';

/**
 * The accept path (a fresh Idempotency-Key per request) and the duplicate path (one key
 * throughout) against the bare Fastify baseline. Both paths run on the same two processes, so
 * the duplicate path is measured on a warm API.
 */
export async function measureAcceptPaths(ctx: BenchContext) {
  const { plan, bodies, redisPid, track, stop, env, profiled } = ctx;
  log('accept and duplicate paths');
  const basePort = await freePort();
  const bare = track(
    startNodeProcess('bench/bare-fastify.ts', { PORT: String(basePort), LOG_LEVEL: 'warn' }, profiled('bare-fastify')),
  );
  const bareUrl = `http://127.0.0.1:${basePort}`;
  await eventually(async () => ((await fetch(`${bareUrl}/health/live`).catch(() => null))?.ok ? true : undefined), {
    timeoutMs: 20_000,
    what: 'the baseline server',
  });
  const api = track(
    await startApi(env({ QUEUE_NAME: `accept_${randomSuffix()}` }), { nodeArgs: profiled('api-accept') }),
  );
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
    if (
      result.errors > 0 ||
      unexpected.length > 0 ||
      (expected.length === 2 && (result.statusCounts['202'] ?? 0) > 1)
    ) {
      throw new Error(`${server.url} answered ${JSON.stringify(result.statusCounts)} with ${result.errors} errors`);
    }
    return { ...result, cpu: await meter.stop(result.requests) };
  };
  const bareServer = { ...bare, url: bareUrl };
  await load(bareUrl, 'distinct', plan.warmup);
  await load(api.url, 'distinct', plan.warmup);
  const accept = await compare(
    plan.rounds,
    () => measuredLoad(bareServer, 'distinct'),
    () => measuredLoad(api, 'distinct'),
  );
  const duplicate = await compare(
    plan.rounds,
    () => measuredLoad(bareServer, 'duplicate'),
    () => measuredLoad(api, 'duplicate'),
  );
  const apiPeakRssMb = await peakRssMb(api.pid);
  await stop(api);
  await stop(bare);
  return {
    accept: { ...accept, ratio: accept.subject.requestsPerSecond / accept.baseline.requestsPerSecond },
    duplicate: { ...duplicate, ratio: duplicate.subject.requestsPerSecond / duplicate.baseline.requestsPerSecond },
    apiPeakRssMb,
  };
}
