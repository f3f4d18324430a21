import { readFile } from 'node:fs/promises';

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

/** A process's CPU time so far, or undefined once it is gone. */
async function cpuMs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

const selfMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** What a CPU meter counts besides this process. */
export interface MeteredProcesses {
  /** The process under test. */
  pid: number;
  /** The Redis server; none on the Postgres backend, where Redis plays no part. */
  redisPid: number | undefined;
  /**
   * The Postgres server's processes that work for the measurement, listed at its start and its
   * end: a backend that connects meanwhile counts from its start, one that exits is lost.
   */
  postgresPids: () => Promise<number[]>;
}

/**
 * Starts counting the CPU of the process under test, of Redis, of Postgres and of this process.
 * `stop(units)` returns microseconds per unit (request or job).
 */
export async function startCpuMeter({ pid, redisPid, postgresPids }: MeteredProcesses) {
  const usedMs = async (pid: number | undefined) => (pid === undefined ? 0 : ((await cpuMs(pid)) ?? 0));
  const postgresAtStart = new Map<number, number>();
  for (const postgresPid of await postgresPids()) {
    const ms = await cpuMs(postgresPid);
    if (ms !== undefined) postgresAtStart.set(postgresPid, ms);
  }
  const start = { process: await usedMs(pid), redis: await usedMs(redisPid), self: selfMs() };
  return {
    async stop(units: number): Promise<CpuUse> {
      let postgres = 0;
      for (const postgresPid of await postgresPids()) {
        // A backend gone between the listing and the read counts nothing (not minus its start).
        const ms = await cpuMs(postgresPid);
        if (ms !== undefined) postgres += ms - (postgresAtStart.get(postgresPid) ?? 0);
      }
      const perUnit = (ms: number) => Math.round((ms * 1000) / Math.max(units, 1));
      return {
        process: perUnit((await usedMs(pid)) - start.process),
        redis: perUnit((await usedMs(redisPid)) - start.redis),
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
