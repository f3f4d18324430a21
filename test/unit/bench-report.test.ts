import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BEGIN, END, renderMarkdown, renderTable, targets, type BenchReport } from '../../bench/report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The figures of the last recorded `npm run bench`: a real report to render. */
const recorded = JSON.parse(readFileSync(`${ROOT}BENCHMARKS.json`, 'utf8')) as BenchReport;

/** `report` with payonce at `ratio` times the naive design on every path and in the worker. */
function againstNaive(report: BenchReport, ratio: { accept: number; duplicate: number; worker: number }) {
  const { accept, duplicate, worker } = report;
  return {
    ...report,
    accept: { ...accept, naive: { ...accept.subject, requestsPerSecond: 700 }, ratioToNaive: ratio.accept },
    duplicate: {
      ...duplicate,
      naive: { ...duplicate.subject, requestsPerSecond: 3_100 },
      ratioToNaive: ratio.duplicate,
    },
    worker: {
      ...worker,
      naiveJobsPerSecond: 600,
      ratioToNaive: ratio.worker,
      cpu: { ...worker.cpu, naive: { process: 1_234, redis: 5, postgres: 67, loadGenerator: 8 } },
    },
  } satisfies BenchReport;
}

const verdict = (report: BenchReport, name: string) => targets(report).find((t) => t.name === name)!.met;

describe('the benchmark report', () => {
  it('replaces only the figures between the markers of BENCHMARKS.md, keeping the text around them', () => {
    const previous = `# Benchmarks\n\nWhat is compared.\n\n${BEGIN}\nold figures\n${END}\n\n## Analysis\n\nkept\n`;
    const written = renderMarkdown(recorded, previous);
    expect(written.startsWith(`# Benchmarks\n\nWhat is compared.\n\n${BEGIN}\n`)).toBe(true);
    expect(written.endsWith(`${END}\n\n## Analysis\n\nkept\n`)).toBe(true);
    expect(written).not.toContain('old figures');
    const { accept } = recorded;
    expect(written).toContain(
      `| accept path (req/s) | ${accept.subject.requestsPerSecond.toLocaleString('en-US')} | naive service not measured |  |`,
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
    const report = againstNaive(recorded, { accept: 1.54, duplicate: 1.32, worker: 1.78 });
    const written = renderMarkdown(report, '');
    expect(written).toContain(
      `| accept path (req/s) | ${report.accept.subject.requestsPerSecond.toLocaleString('en-US')} | 700 naive service | 1.54 |`,
    );
    expect(written).toContain(
      `| duplicate path (req/s) | ${report.duplicate.subject.requestsPerSecond.toLocaleString('en-US')} | 3,100 naive service | 1.32 |`,
    );
    expect(written).toContain(
      `| worker, no delay (jobs/s) | ${report.worker.workerJobsPerSecond.toLocaleString('en-US')} | 600 naive worker | 1.78 |`,
    );
    expect(written).toContain('| naive worker | 1,234 | 5 | 67 | 8 | 1,314 |');
    expect(written).toContain('| worker | >= 1.5x the naive worker | 1.78x | yes |');
    expect(written).not.toContain('not measured');
  });

  it('shows what a run recorded before the naive design did not measure as not measured', () => {
    const written = renderMarkdown(recorded, '');
    expect(written).toContain('| naive service, distinct keys | not measured |  |  |  |  |');
    expect(written).toContain('| naive worker | not measured |  |  |  |  |');
    expect(written).toContain('| accept path | >= 1.2x the naive service | not measured | not measured |');
    expect(renderTable(recorded)).toMatch(/^n\/a {3}worker: not measured \(target >= 1\.5x the naive worker\)$/m);
    for (const name of ['accept path', 'duplicate path', 'worker']) expect(verdict(recorded, name)).toBeNull();
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

  it('judges each target at its threshold', () => {
    const naive = (ratio: Partial<{ accept: number; duplicate: number; worker: number }>) =>
      againstNaive(recorded, { accept: 2, duplicate: 2, worker: 2, ...ratio });
    expect(verdict(naive({ accept: 1.19 }), 'accept path')).toBe(false);
    expect(verdict(naive({ accept: 1.2 }), 'accept path')).toBe(true);
    expect(verdict(naive({ duplicate: 1.19 }), 'duplicate path')).toBe(false);
    expect(verdict(naive({ duplicate: 1.2 }), 'duplicate path')).toBe(true);
    expect(verdict(naive({ worker: 1.49 }), 'worker')).toBe(false);
    expect(verdict(naive({ worker: 1.5 }), 'worker')).toBe(true);
    // Each target reads its own ratio only.
    expect(verdict(naive({ accept: 1 }), 'worker')).toBe(true);
    const scaling = (ratio: number): BenchReport => ({
      ...recorded,
      scaling: recorded.scaling.map((row, i) => (i === 0 ? { ...row, ratio } : { ...row, ratio: 1 })),
    });
    expect(verdict(scaling(0.79), 'scaling')).toBe(false);
    expect(verdict(scaling(0.8), 'scaling')).toBe(true);
    const endToEnd = (p99: number): BenchReport => ({
      ...recorded,
      endToEnd: { ...recorded.endToEnd, overheadMs: { ...recorded.endToEnd.overheadMs, p99 } },
    });
    expect(verdict(endToEnd(24), 'end-to-end overhead p99')).toBe(true);
    expect(verdict(endToEnd(25), 'end-to-end overhead p99')).toBe(false);
    const memory = (apiPeakRssMbAccept: number): BenchReport => ({
      ...recorded,
      memory: { ...recorded.memory, apiPeakRssMbAccept },
    });
    expect(verdict(memory(149), 'memory')).toBe(true);
    expect(verdict(memory(150), 'memory')).toBe(false);
  });
});
