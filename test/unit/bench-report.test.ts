import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BEGIN, END, renderMarkdown, targets, type BenchReport } from '../../bench/report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The figures of the last recorded `npm run bench`: a real report to render. */
const recorded = JSON.parse(readFileSync(`${ROOT}BENCHMARKS.json`, 'utf8')) as BenchReport;

describe('the benchmark report', () => {
  it('replaces only the figures between the markers of BENCHMARKS.md, keeping the text around them', () => {
    const previous = `# Benchmarks\n\nWhat is compared.\n\n${BEGIN}\nold figures\n${END}\n\n## Analysis\n\nkept\n`;
    const written = renderMarkdown(recorded, previous);
    expect(written.startsWith(`# Benchmarks\n\nWhat is compared.\n\n${BEGIN}\n`)).toBe(true);
    expect(written.endsWith(`${END}\n\n## Analysis\n\nkept\n`)).toBe(true);
    expect(written).not.toContain('old figures');
    const { accept } = recorded;
    expect(written).toContain(
      `| accept path (req/s) | ${accept.subject.requestsPerSecond.toLocaleString('en-US')} | ` +
        `${accept.baseline.requestsPerSecond.toLocaleString('en-US')} bare Fastify | ${accept.ratio.toFixed(2)} |`,
    );
    const cpu = accept.subject.cpu!;
    const total = cpu.process + cpu.redis + cpu.postgres + cpu.loadGenerator;
    // Figures are written with thousands separators, as every count in the report is.
    const cells = [cpu.process, cpu.redis, cpu.postgres, cpu.loadGenerator, total].map((n) =>
      n.toLocaleString('en-US'),
    );
    expect(written).toContain(`| accept path | ${cells.join(' | ')} |`);
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
    const verdict = (report: BenchReport, name: string) => targets(report).find((t) => t.name === name)!.met;
    const worker = (ratioToBare: number): BenchReport => ({ ...recorded, worker: { ...recorded.worker, ratioToBare } });
    expect(verdict(worker(0.69), 'worker')).toBe(false);
    expect(verdict(worker(0.7), 'worker')).toBe(true);
    const scaling = (ratio: number): BenchReport => ({
      ...recorded,
      scaling: recorded.scaling.map((row, i) => (i === 0 ? { ...row, ratio } : { ...row, ratio: 1 })),
    });
    expect(verdict(scaling(0.79), 'scaling')).toBe(false);
    expect(verdict(scaling(0.8), 'scaling')).toBe(true);
    const p99 = (subjectP99: number): BenchReport => ({
      ...recorded,
      accept: {
        ...recorded.accept,
        baseline: { ...recorded.accept.baseline, latencyP99Ms: 6 },
        subject: { ...recorded.accept.subject, latencyP99Ms: subjectP99 },
      },
    });
    expect(verdict(p99(18), 'accept p99')).toBe(true);
    expect(verdict(p99(19), 'accept p99')).toBe(false);
  });
});
