import { readdir, readFile } from 'node:fs/promises';

/**
 * CPU time spent by each process taking part in a measurement, read from /proc (user + system
 * time). Less sensitive to a noisy neighbour than throughput, and it shows which process a
 * request's cost lands in: the one under test, Redis, Postgres or the load generator.
 */
export interface CpuUse {
  /** The process under test (API, worker, or its baseline). */
  process: number;
  /** 0 on the Postgres backend, where Redis plays no part and is not metered. */
  redis: number;
  postgres: number;
  /** This process: the load generator, or the queue inspector while a worker drains. */
  loadGenerator: number;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux.

async function cpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0; // The process is gone.
  }
}

/** Every process named `name` (its /proc comm), e.g. all Postgres backends. */
async function pidsNamed(name: string): Promise<number[]> {
  const entries = await readdir('/proc');
  const pids = await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry) =>
        (await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')).trim() === name ? Number(entry) : 0,
      ),
  );
  return pids.filter((pid) => pid > 0);
}

const selfMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/**
 * Starts counting the CPU of `pid`, of the Redis server `redisPid` (none on the Postgres
 * backend), of every Postgres process and of this process. `stop(units)` returns microseconds
 * per unit (request or job).
 */
export async function startCpuMeter(pid: number, redisPid: number | undefined) {
  const postgresAtStart = new Map<number, number>();
  for (const postgresPid of await pidsNamed('postgres')) postgresAtStart.set(postgresPid, await cpuMs(postgresPid));
  const redisMs = async () => (redisPid === undefined ? 0 : cpuMs(redisPid));
  const start = { process: await cpuMs(pid), redis: await redisMs(), self: selfMs() };
  return {
    async stop(units: number): Promise<CpuUse> {
      const postgresPids = await pidsNamed('postgres');
      let postgres = 0;
      for (const postgresPid of postgresPids)
        postgres += (await cpuMs(postgresPid)) - (postgresAtStart.get(postgresPid) ?? 0);
      const perUnit = (ms: number) => Math.round((ms * 1000) / Math.max(units, 1));
      return {
        process: perUnit((await cpuMs(pid)) - start.process),
        redis: perUnit((await redisMs()) - start.redis),
        postgres: perUnit(postgres),
        loadGenerator: perUnit(selfMs() - start.self),
      };
    },
  };
}

/** The pid of the Redis server a client is connected to. */
export async function redisServerPid(info: () => Promise<string>): Promise<number> {
  const pid = /process_id:(\d+)/.exec(await info())?.[1];
  if (!pid) throw new Error('Redis INFO did not report process_id');
  return Number(pid);
}
