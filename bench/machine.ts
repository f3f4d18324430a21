import { execFileSync } from 'node:child_process';
import os from 'node:os';
import type { BenchReport } from './report.js';

/** The machine a report was measured on, with the versions of node, Postgres and Redis ('unknown' where a tool is missing). */
export function describeMachine(): BenchReport['machine'] {
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
