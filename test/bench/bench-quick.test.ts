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
 * tiny loads, with profiling on. No speed is asserted.
 */
describe('npm run bench -- --quick', () => {
  it('runs every phase against its baselines, prints the comparison, and profiles with --profile', async () => {
    const profiles = await mkdtemp(join(tmpdir(), 'payonce-profiles-'));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--quick', '--profile', profiles],
      { cwd: ROOT, timeout: 150_000, maxBuffer: 10 * 1024 * 1024 },
    );
    expect(stdout).toContain('payonce benchmark (quick)');
    for (const row of [
      'accept path (req/s)',
      'duplicate path (req/s)',
      'worker, no delay (jobs/s)',
      'bare BullMQ worker',
      'raw single-row inserts',
      'end-to-end overhead',
      'scaling: 2 process(es)',
      'scaling: 1 process x 20',
      'peak RSS: apiPeakRssMbAccept',
    ]) {
      expect(stdout).toContain(row);
    }
    // Every ratio is a measured number, not a placeholder.
    const ratios = [...stdout.matchAll(/ (\d+\.\d\d)\s*$/gm)].map((match) => Number(match[1]));
    expect(ratios.length).toBeGreaterThanOrEqual(5);
    for (const ratio of ratios) expect(ratio).toBeGreaterThan(0);
    // payonce beside the naive design on every path, then the bare floors, each with its ratio.
    for (const path of ['accept', 'duplicate']) {
      expect(stdout).toMatch(
        new RegExp(`^${path} path \\(req/s\\)\\s+[\\d,]+\\s+[\\d,]+ naive service\\s+\\d+\\.\\d\\d$`, 'm'),
      );
      expect(stdout).toMatch(
        new RegExp(`^${path} p50 / p99\\s+[\\d.]+ ms / [\\d.]+ ms\\s+[\\d.]+ ms / [\\d.]+ ms naive service$`, 'm'),
      );
    }
    expect(stdout).toMatch(/^\s+[\d,]+ bare Fastify\s+\d+\.\d\d$/m);
    expect(stdout).toMatch(/^worker, no delay \(jobs\/s\)\s+[\d,]+\s+[\d,]+ naive worker\s+\d+\.\d\d$/m);
    expect(stdout).toMatch(/^peak RSS: naiveApiPeakRssMbAccept\s+\d+ MB$/m);
    expect(stdout).toMatch(/^peak RSS: naiveWorkerPeakRssMb\s+\d+ MB$/m);
    for (const target of ['accept path', 'duplicate path', 'worker']) {
      expect(stdout).toMatch(
        new RegExp(`^(met |MISS)  ${target}: \\d+\\.\\d\\dx \\(target >= [\\d.]+x the naive`, 'm'),
      );
    }
    // The end-to-end time is split, and every process's CPU is counted where the work lands.
    expect(stdout).toMatch(/of which queued \(accepted -> taken\)\s+p50 \d/);
    expect(stdout).toMatch(/of which in the worker \(taken -> written\)\s+p50 \d/);
    const cpu = (label: string) => {
      const match = new RegExp(`^${label}\\s+([\\d,]+)\\s+([\\d,]+)\\s+([\\d,]+)\\s+([\\d,]+)\\s+([\\d,]+)$`, 'm').exec(
        stdout,
      );
      expect(match, `CPU row "${label}"`).not.toBeNull();
      const [own, redis, postgres, loadGenerator, total] = match!.slice(1).map((n) => Number(n.replace(/,/g, '')));
      expect(total).toBe(own! + redis! + postgres! + loadGenerator!);
      return { process: own!, redis: redis!, postgres: postgres!, loadGenerator: loadGenerator! };
    };
    const accept = cpu('accept path');
    expect(accept.process).toBeGreaterThan(0);
    expect(accept.redis).toBeGreaterThan(0);
    expect(accept.loadGenerator).toBeGreaterThan(0);
    expect(cpu('BullMQ add alone \\(its client as process\\)').redis).toBeGreaterThan(0);
    expect(cpu('payonce worker').process).toBeGreaterThan(0);
    for (const keys of ['distinct keys', 'one key']) {
      const naive = cpu(`naive service, ${keys}`);
      expect(naive.process).toBeGreaterThan(0);
      expect(naive.loadGenerator).toBeGreaterThan(0);
    }
    expect(cpu('naive worker').process).toBeGreaterThan(0);

    // A CPU profile of every process under test and every baseline, and their summary.
    try {
      expect((await readdir(profiles)).sort()).toEqual(
        [
          'api-accept',
          'api-end-to-end',
          'bare-fastify',
          'bare-worker',
          'naive-api',
          'naive-worker',
          'worker-end-to-end',
          'worker-throughput',
        ].map((name) => `${name}.cpuprofile`),
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
  }, 180_000);
});
