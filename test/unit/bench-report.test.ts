import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  BEGIN,
  END,
  renderMarkdown,
  renderTable,
  targets,
  type BackendFigures,
  type BenchReport,
} from '../../bench/report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The figures of the last recorded `npm run bench`: a real report to render. */
const recorded = JSON.parse(readFileSync(`${ROOT}BENCHMARKS.json`, 'utf8')) as BenchReport;

type NaiveRatios = { accept: number; duplicate: number; worker: number };

/**
 * `report` as a run recorded before the bench measured the naive design, the Postgres backend
 * and the limits (run 10 and earlier) has it: none of their fields.
 */
function recordedBeforeNaive(report: BenchReport): BenchReport {
  const { postgres: _postgres, limits: _limits, ...redis } = report;
  const { naive: _acceptNaive, ratioToNaive: _acceptRatio, ...accept } = redis.accept;
  const { naive: _duplicateNaive, ratioToNaive: _duplicateRatio, ...duplicate } = redis.duplicate;
  const { naiveJobsPerSecond: _naiveJobs, ratioToNaive: _workerRatio, ...worker } = redis.worker;
  const { naive: _naiveCpu, ...workerCpu } = worker.cpu;
  return { ...redis, accept, duplicate, worker: { ...worker, cpu: workerCpu } };
}
const earlier = recordedBeforeNaive(recorded);

/** One backend's `figures` with payonce at `ratio` times the naive design on every path and in the worker. */
function figuresAgainstNaive(figures: BackendFigures, ratio: NaiveRatios): BackendFigures {
  const { accept, duplicate, worker } = figures;
  return {
    accept: { ...accept, naive: { ...accept.subject, requestsPerSecond: 700 }, ratioToNaive: ratio.accept },
    duplicate: {
      ...duplicate,
      naive: { ...duplicate.subject, requestsPerSecond: 3_100 },
      ratioToNaive: ratio.duplicate,
    },
    bullmqAddCpu: figures.bullmqAddCpu,
    worker: {
      ...worker,
      naiveJobsPerSecond: 600,
      ratioToNaive: ratio.worker,
      cpu: { ...worker.cpu, naive: { process: 1_234, redis: 5, postgres: 67, loadGenerator: 8 } },
    },
    endToEnd: figures.endToEnd,
    scaling: figures.scaling,
    memory: figures.memory,
  };
}

/** `report` with payonce at `ratio` times the naive design on Redis (the top-level figures). */
const againstNaive = (report: BenchReport, ratio: NaiveRatios): BenchReport => ({
  ...report,
  ...figuresAgainstNaive(report, ratio),
});

/**
 * `report` with Postgres figures: the recorded Redis figures against the naive design at `ratio`,
 * on the reduced scaling matrix, with Redis's CPU set to 0 as the Postgres backend's meter leaves it.
 */
function withPostgres(report: BenchReport, ratio: NaiveRatios, change: Partial<BackendFigures> = {}): BenchReport {
  const figures = figuresAgainstNaive(report, ratio);
  return {
    ...report,
    postgres: {
      ...figures,
      accept: { ...figures.accept, subject: { ...figures.accept.subject, requestsPerSecond: 432 } },
      worker: {
        ...figures.worker,
        workerJobsPerSecond: 345,
        cpu: { ...figures.worker.cpu, worker: { process: 900, redis: 0, postgres: 1_100, loadGenerator: 20 } },
      },
      scaling: report.scaling.slice(0, 2),
      ...change,
    },
  };
}

/** The recorded run with both backends' figures against the naive design, at ratios of their own. */
const bothAgainstNaive = withPostgres(againstNaive(recorded, { accept: 1.54, duplicate: 1.32, worker: 1.78 }), {
  accept: 1.21,
  duplicate: 1.1,
  worker: 1.6,
});

const verdict = (report: BenchReport, name: string) => targets(report).find((t) => t.name === name)!.met;

describe('the benchmark report', () => {
  it('replaces only the figures between the markers of BENCHMARKS.md, keeping the text around them', () => {
    const previous = `# Benchmarks\n\nWhat is compared.\n\n${BEGIN}\nold figures\n${END}\n\n## Analysis\n\nkept\n`;
    const written = renderMarkdown(earlier, previous);
    expect(written.startsWith(`# Benchmarks\n\nWhat is compared.\n\n${BEGIN}\n`)).toBe(true);
    expect(written.endsWith(`${END}\n\n## Analysis\n\nkept\n`)).toBe(true);
    expect(written).not.toContain('old figures');
    const { accept } = earlier;
    expect(written).toContain(
      `| accept path on Redis (req/s) | ${accept.subject.requestsPerSecond.toLocaleString('en-US')} | naive service not measured |  |`,
    );
    expect(written).toContain(
      `|  |  | ${accept.baseline.requestsPerSecond.toLocaleString('en-US')} bare Fastify | ${accept.ratio.toFixed(2)} |`,
    );
    const cpu = accept.subject.cpu!;
    const total = cpu.process + cpu.redis + cpu.postgres + cpu.loadGenerator;
    // Figures are written with thousands separators, as every count in the report is.
    const cells = [cpu.process, cpu.redis, cpu.postgres, cpu.loadGenerator, total].map((n) =>
      n.toLocaleString('en-US'),
    );
    expect(written).toContain(`| accept path | ${cells.join(' | ')} |`);
  });

  it('shows the naive design beside payonce, with its ratio and its CPU per job', () => {
    const report = bothAgainstNaive;
    const written = renderMarkdown(report, '');
    expect(written).toContain(
      `| accept path on Redis (req/s) | ${report.accept.subject.requestsPerSecond.toLocaleString('en-US')} | 700 naive service | 1.54 |`,
    );
    expect(written).toContain(
      `| duplicate path on Redis (req/s) | ${report.duplicate.subject.requestsPerSecond.toLocaleString('en-US')} | 3,100 naive service | 1.32 |`,
    );
    expect(written).toContain(
      `| worker on Redis, no delay (jobs/s) | ${report.worker.workerJobsPerSecond.toLocaleString('en-US')} | 600 naive worker | 1.78 |`,
    );
    expect(written).toContain('| naive worker | 1,234 | 5 | 67 | 8 | 1,314 |');
    expect(written).toContain('| worker on Redis | >= 1.5x the naive worker | 1.78x | yes |');
    expect(written).not.toContain('not measured');
  });

  it("shows the Postgres backend's figures beside Redis's, each against its own naive design", () => {
    const report = bothAgainstNaive;
    const written = renderMarkdown(report, '');
    // Each measurement on Redis, then the same on Postgres.
    const acceptRedis = written.indexOf('| accept path on Redis (req/s) |');
    const acceptPostgres = written.indexOf('| accept path on Postgres (req/s) | 432 | 700 naive service | 1.21 |');
    expect(acceptRedis).toBeGreaterThan(0);
    expect(acceptPostgres).toBeGreaterThan(acceptRedis);
    expect(written.indexOf('| accept p50 / p99 on Redis |')).toBeGreaterThan(acceptPostgres);
    expect(written).toContain('| worker on Postgres, no delay (jobs/s) | 345 | 600 naive worker | 1.60 |');
    expect(written).toMatch(/\| end-to-end overhead at 500\/s on Postgres \| p50 [\d.]+ ms, p99 [\d.]+ ms \|/);
    expect(written).toContain(`| scaling on Postgres: ${recorded.scaling[1]!.label} |`);
    expect(written).not.toContain(`| scaling on Postgres: ${recorded.scaling[2]!.label} |`);
    expect(written).toContain(
      `| peak RSS on Postgres: apiPeakRssMbAccept | ${recorded.memory.apiPeakRssMbAccept} MB |`,
    );
    // The Postgres backend's CPU table has no Redis column: Redis plays no part there.
    expect(written).toContain(
      '| CPU on Postgres, per request or job (µs) | process | Postgres | load generator | total |',
    );
    expect(written).toContain('| payonce worker | 900 | 1,100 | 20 | 2,020 |');
    expect(written).toContain('| accept path on Postgres | >= 1.2x the naive service | 1.21x | yes |');
    expect(written).toContain('| duplicate path on Postgres | >= 1.2x the naive service | 1.10x | **no** |');
    expect(written).not.toContain('not measured');
  });

  it('shows what a run recorded before the naive design and the Postgres figures did not measure as not measured', () => {
    const written = renderMarkdown(earlier, '');
    expect(written).toContain('| naive service, distinct keys | not measured |  |  |  |  |');
    expect(written).toContain('| naive worker | not measured |  |  |  |  |');
    expect(written).toContain('| accept path on Redis | >= 1.2x the naive service | not measured | not measured |');
    expect(renderTable(earlier)).toMatch(
      /^n\/a {3}worker on Redis: not measured \(target >= 1\.5x the naive worker\)$/m,
    );
    for (const name of ['accept path', 'duplicate path', 'worker'])
      expect(verdict(earlier, `${name} on Redis`)).toBeNull();

    expect(earlier.postgres).toBeUndefined();
    for (const row of [
      '| accept path on Postgres (req/s) | not measured |  |  |',
      '| duplicate p50 / p99 on Postgres | not measured |  |  |',
      '| worker on Postgres, no delay (jobs/s) | not measured |  |  |',
      '| end-to-end overhead at 500/s on Postgres | not measured |  |  |',
      '| scaling on Postgres | not measured |  |  |',
      '| peak RSS on Postgres | not measured |  |  |',
      '| payonce worker | not measured |  |  |  |',
      '| end-to-end overhead p99 on Postgres | < 50 ms at 500/s | not measured | not measured |',
    ]) {
      expect(written).toContain(row);
    }
    for (const target of targets(earlier).filter((t) => t.name.endsWith(' on Postgres'))) {
      expect(target.met, target.name).toBeNull();
    }
  });

  it('starts a new file when there are no markers yet', () => {
    const written = renderMarkdown(recorded, '');
    expect(written.startsWith(`# Benchmarks\n\n${BEGIN}\n`)).toBe(true);
    expect(written.trimEnd().endsWith(END)).toBe(true);
  });

  it('holds in BENCHMARKS.md exactly the figures of BENCHMARKS.json (nothing edited by hand)', () => {
    const markdown = readFileSync(`${ROOT}BENCHMARKS.md`, 'utf8');
    expect(renderMarkdown(recorded, markdown)).toBe(markdown);
  });

  it('judges each target at its threshold, on each backend', () => {
    for (const backend of ['Redis', 'Postgres'] as const) {
      const naive = (ratio: Partial<NaiveRatios>) => {
        const ratios = { accept: 2, duplicate: 2, worker: 2, ...ratio };
        return backend === 'Redis'
          ? withPostgres(againstNaive(recorded, ratios), { accept: 2, duplicate: 2, worker: 2 })
          : withPostgres(againstNaive(recorded, { accept: 2, duplicate: 2, worker: 2 }), ratios);
      };
      const on = (name: string) => `${name} on ${backend}`;
      expect(verdict(naive({ accept: 1.19 }), on('accept path'))).toBe(false);
      expect(verdict(naive({ accept: 1.2 }), on('accept path'))).toBe(true);
      expect(verdict(naive({ duplicate: 1.19 }), on('duplicate path'))).toBe(false);
      expect(verdict(naive({ duplicate: 1.2 }), on('duplicate path'))).toBe(true);
      expect(verdict(naive({ worker: 1.49 }), on('worker'))).toBe(false);
      expect(verdict(naive({ worker: 1.5 }), on('worker'))).toBe(true);
      // Each target reads its own ratio only, on its own backend.
      expect(verdict(naive({ accept: 1 }), on('worker'))).toBe(true);
      const other = backend === 'Redis' ? 'Postgres' : 'Redis';
      expect(verdict(naive({ accept: 1 }), `accept path on ${other}`)).toBe(true);
    }

    /** Postgres figures changed by `change`, over Redis figures that meet every target they can. */
    const postgres = (change: Partial<BackendFigures>) =>
      withPostgres(recorded, { accept: 2, duplicate: 2, worker: 2 }, change);
    const scaling = (ratio: number) =>
      recorded.scaling.map((row, i) => (i === 0 ? { ...row, ratio } : { ...row, ratio: 1 }));
    expect(verdict({ ...recorded, scaling: scaling(0.79) }, 'scaling on Redis')).toBe(false);
    expect(verdict({ ...recorded, scaling: scaling(0.8) }, 'scaling on Redis')).toBe(true);
    expect(verdict(postgres({ scaling: scaling(0.79) }), 'scaling on Postgres')).toBe(false);
    expect(verdict(postgres({ scaling: scaling(0.8) }), 'scaling on Postgres')).toBe(true);

    // End-to-end p99: under 25 ms on Redis, under 50 ms on Postgres.
    const endToEnd = (p99: number): BackendFigures['endToEnd'] => ({
      ...recorded.endToEnd,
      overheadMs: { ...recorded.endToEnd.overheadMs, p99 },
    });
    expect(verdict({ ...recorded, endToEnd: endToEnd(24) }, 'end-to-end overhead p99 on Redis')).toBe(true);
    expect(verdict({ ...recorded, endToEnd: endToEnd(25) }, 'end-to-end overhead p99 on Redis')).toBe(false);
    expect(verdict(postgres({ endToEnd: endToEnd(49) }), 'end-to-end overhead p99 on Postgres')).toBe(true);
    expect(verdict(postgres({ endToEnd: endToEnd(50) }), 'end-to-end overhead p99 on Postgres')).toBe(false);
    // Each backend's bound reads its own p99 only.
    expect(
      verdict({ ...postgres({ endToEnd: endToEnd(49) }), endToEnd: endToEnd(30) }, 'end-to-end overhead p99 on Redis'),
    ).toBe(false);

    // Every process well under the bound but the API under accept load, at `apiPeakRssMbAccept`.
    const memory = (apiPeakRssMbAccept: number) => ({
      apiPeakRssMbAccept,
      apiPeakRssMbEndToEnd: 100,
      workerPeakRssMbThroughput: 100,
      workerPeakRssMbEndToEnd: 100,
    });
    expect(verdict({ ...recorded, memory: memory(149) }, 'memory on Redis')).toBe(true);
    expect(verdict({ ...recorded, memory: memory(150) }, 'memory on Redis')).toBe(false);
    expect(verdict(postgres({ memory: memory(149) }), 'memory on Postgres')).toBe(true);
    expect(verdict(postgres({ memory: memory(150) }), 'memory on Postgres')).toBe(false);
  });
});
