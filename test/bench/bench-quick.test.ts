import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Keeps `npm run bench` and `npm run bench:profile` working: the quick mode runs every phase on
 * tiny loads, on both store backends, with profiling on. No speed is asserted.
 */
describe('npm run bench -- --quick', () => {
  it('runs every phase on both backends against their baselines, prints the comparison, and profiles with --profile', async () => {
    const profiles = await mkdtemp(join(tmpdir(), 'payonce-profiles-'));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--quick', '--profile', profiles],
      { cwd: ROOT, timeout: 300_000, maxBuffer: 10 * 1024 * 1024 },
    );
    expect(stdout).toContain('payonce benchmark (quick)');
    for (const on of ['Redis', 'Postgres']) {
      for (const row of [
        `accept path on ${on} (req/s)`,
        `duplicate path on ${on} (req/s)`,
        `worker on ${on}, no delay (jobs/s)`,
        `end-to-end overhead at 100/s on ${on}`,
        `scaling on ${on}: 2 process(es)`,
        `scaling on ${on}: 1 process x 20`,
        `peak RSS on ${on}: apiPeakRssMbAccept`,
      ]) {
        expect(stdout).toContain(row);
      }
    }
    expect(stdout).toContain('bare BullMQ worker');
    expect(stdout).toContain('raw single-row inserts');
    expect(stdout).not.toContain('not measured');
    // Every ratio is a measured number, not a placeholder.
    const ratios = [...stdout.matchAll(/ (\d+\.\d\d)\s*$/gm)].map((match) => Number(match[1]));
    expect(ratios.length).toBeGreaterThanOrEqual(10);
    for (const ratio of ratios) expect(ratio).toBeGreaterThan(0);
    // payonce beside the naive design on every path and backend, then the bare floors, each with its ratio.
    for (const on of ['Redis', 'Postgres']) {
      for (const path of ['accept', 'duplicate']) {
        expect(stdout).toMatch(
          new RegExp(`^${path} path on ${on} \\(req/s\\)\\s+[\\d,]+\\s+[\\d,]+ naive service\\s+\\d+\\.\\d\\d$`, 'm'),
        );
        expect(stdout).toMatch(
          new RegExp(
            `^${path} p50 / p99 on ${on}\\s+[\\d.]+ ms / [\\d.]+ ms\\s+[\\d.]+ ms / [\\d.]+ ms naive service$`,
            'm',
          ),
        );
      }
      expect(stdout).toMatch(
        new RegExp(`^worker on ${on}, no delay \\(jobs/s\\)\\s+[\\d,]+\\s+[\\d,]+ naive worker\\s+\\d+\\.\\d\\d$`, 'm'),
      );
      expect(stdout).toMatch(new RegExp(`^peak RSS on ${on}: naiveApiPeakRssMbAccept\\s+\\d+ MB$`, 'm'));
      expect(stdout).toMatch(new RegExp(`^peak RSS on ${on}: naiveWorkerPeakRssMb\\s+\\d+ MB$`, 'm'));
      for (const target of ['accept path', 'duplicate path', 'worker']) {
        expect(stdout).toMatch(
          new RegExp(`^(met |MISS)  ${target} on ${on}: \\d+\\.\\d\\dx \\(target >= [\\d.]+x the naive`, 'm'),
        );
      }
    }
    expect(stdout).toMatch(/^\s+[\d,]+ bare Fastify\s+\d+\.\d\d$/m);
    expect(stdout).toMatch(/^(met |MISS) {2}end-to-end overhead p99 on Redis: \d+ ms \(target < 25 ms at 100\/s\)$/m);
    expect(stdout).toMatch(
      /^(met |MISS) {2}end-to-end overhead p99 on Postgres: \d+ ms \(target < 50 ms at 100\/s\)$/m,
    );
    // The end-to-end time is split on both backends.
    expect([...stdout.matchAll(/of which queued \(accepted -> taken\)\s+p50 \d/g)]).toHaveLength(2);
    expect([...stdout.matchAll(/of which in the worker \(taken -> written\)\s+p50 \d/g)]).toHaveLength(2);

    // Every process's CPU is counted where the work lands: one table per backend, the Postgres
    // one without a Redis column (Redis plays no part there).
    const [redisTable, postgresTable] = ['Redis', 'Postgres'].map((on) => {
      const start = stdout.indexOf(`CPU on ${on}, per request or job (µs)`);
      expect(start, `the CPU table on ${on}`).toBeGreaterThan(0);
      return stdout.slice(start, stdout.indexOf('\n\n', start));
    });
    expect(postgresTable).not.toMatch(/Redis/);
    const cpu = (table: string, label: string) => {
      const columns = table === redisTable ? 5 : 4;
      const match = new RegExp(`^${label}${'\\s+([\\d,]+)'.repeat(columns)}$`, 'm').exec(table);
      expect(match, `CPU row "${label}"`).not.toBeNull();
      const figures = match!.slice(1).map((n) => Number(n.replace(/,/g, '')));
      const [own, ...rest] = figures;
      const total = rest.pop()!;
      expect(total).toBe(own! + rest.reduce((sum, n) => sum + n, 0));
      const [redis, postgres, loadGenerator] = columns === 5 ? rest : [0, ...rest];
      return { process: own!, redis: redis!, postgres: postgres!, loadGenerator: loadGenerator! };
    };
    // What the key check and the rate limiter cost: both paths again with the limiter off, and the check alone.
    for (const path of ['accept path', 'duplicate path']) {
      expect(cpu(redisTable!, `${path}, rate limiter off`).process).toBeGreaterThan(0);
    }
    expect(redisTable).toMatch(/^the API key check alone \(in process, a cached key\)\s+[\d,]+\s+[\d,]+$/m);
    const accept = cpu(redisTable!, 'accept path');
    expect(accept.process).toBeGreaterThan(0);
    expect(accept.redis).toBeGreaterThan(0);
    expect(accept.loadGenerator).toBeGreaterThan(0);
    expect(cpu(redisTable!, 'BullMQ add alone \\(its client as process\\)').redis).toBeGreaterThan(0);
    // On Postgres the queue's work lands in Postgres.
    expect(cpu(postgresTable!, 'BullMQ add alone \\(its client as process\\)').postgres).toBeGreaterThan(0);
    expect(cpu(postgresTable!, 'accept path').postgres).toBeGreaterThan(0);
    for (const table of [redisTable!, postgresTable!]) {
      expect(cpu(table, 'payonce worker').process).toBeGreaterThan(0);
      expect(cpu(table, 'naive worker').process).toBeGreaterThan(0);
      for (const keys of ['distinct keys', 'one key']) {
        const naive = cpu(table, `naive service, ${keys}`);
        expect(naive.process).toBeGreaterThan(0);
        expect(naive.loadGenerator).toBeGreaterThan(0);
      }
    }

    // A CPU profile of every process under test and every baseline, and their summary.
    try {
      expect((await readdir(profiles)).sort()).toEqual(
        [
          ...['api-accept', 'api-end-to-end', 'bare-worker', 'naive-api', 'naive-worker'],
          ...['worker-end-to-end', 'worker-throughput'],
        ]
          .flatMap((name) => [name, `${name}-postgres`])
          .concat('bare-fastify', 'api-accept-unlimited')
          .map((name) => `${name}.cpuprofile`)
          .sort(),
      );
      const summary = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'bench/profile-summary.ts', join(profiles, 'worker-throughput.cpuprofile')],
        { cwd: ROOT },
      );
      expect(summary.stdout).toMatch(/^busy \d+ ms/m);
      expect(summary.stdout).toMatch(/by package \(self time\):\n\s+\d+\.\d%\s+\d+ ms\s+\S/);
      expect(summary.stdout).toMatch(/%\s+\d+ ms\s+bullmq$/m);
    } finally {
      await rm(profiles, { recursive: true, force: true });
    }
  }, 330_000);
});
