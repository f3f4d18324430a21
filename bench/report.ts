import type { LatencySummary } from '../scripts/burst/stats.js';
import type { CpuUse } from './cpu.js';
import type { LoadResult } from './load.js';

export interface BenchReport {
  date: string;
  quick: boolean;
  machine: { cpu: string; memoryGb: number; os: string; node: string; postgres: string; redis: string };
  plan: Record<string, unknown>;
  accept: { baseline: LoadResult; subject: LoadResult; ratio: number };
  duplicate: { baseline: LoadResult; subject: LoadResult; ratio: number };
  /** CPU per job of BullMQ's add alone (the client is the bench process). */
  bullmqAddCpu: CpuUse;
  worker: {
    jobs: number;
    bareJobsPerSecond: number;
    workerJobsPerSecond: number;
    rawInsertsPerSecond: number;
    ratioToBare: number;
    ratioToRawInserts: number;
    /** CPU per job while draining, of the bare worker's run and of payonce's. */
    cpu: { bare: CpuUse; worker: CpuUse };
  };
  endToEnd: {
    offeredRate: number;
    achievedRate: number;
    purchases: number;
    delayMs: number;
    overheadMs: LatencySummary;
    /** Accepted -> taken by a worker. */
    queueWaitMs: LatencySummary;
    /** Taken by a worker -> payment row written, simulated delay subtracted. */
    inWorkerMs: LatencySummary;
    /** CPU per purchase while sending; `process` is the API and the worker together. */
    cpu: CpuUse;
  };
  scaling: Array<{
    label: string;
    workers: number;
    concurrency: number;
    jobs: number;
    /** In steady state: between the first and the last round's worth of completions. */
    jobsPerSecond: number;
    /** Over the whole drain, ramp-up and tail included. */
    drainJobsPerSecond: number;
    predicted: number;
    ratio: number;
    workerPeakRssMb: number;
  }>;
  memory: Record<string, number>;
  seconds: number;
}

/** The speed targets payonce is held to (BENCHMARKS.md), checked against a report. */
export function targets(report: BenchReport): Array<{ name: string; target: string; measured: string; met: boolean }> {
  const scalingOk = report.scaling.every((row) => row.ratio >= 0.8);
  const maxRss = Math.max(
    report.memory.apiPeakRssMbAccept ?? 0,
    report.memory.apiPeakRssMbEndToEnd ?? 0,
    report.memory.workerPeakRssMbThroughput ?? 0,
    report.memory.workerPeakRssMbEndToEnd ?? 0,
  );
  const p99Ratio = report.accept.subject.latencyP99Ms / Math.max(report.accept.baseline.latencyP99Ms, 1);
  return [
    {
      name: 'accept path',
      target: '>= 0.6 of bare Fastify',
      measured: report.accept.ratio.toFixed(2),
      met: report.accept.ratio >= 0.6,
    },
    { name: 'accept p99', target: '<= 3x baseline p99', measured: `${p99Ratio.toFixed(1)}x`, met: p99Ratio <= 3 },
    {
      name: 'duplicate path',
      target: '>= 0.9 of bare Fastify',
      measured: report.duplicate.ratio.toFixed(2),
      met: report.duplicate.ratio >= 0.9,
    },
    {
      name: 'worker',
      target: '>= 0.7 of bare BullMQ worker',
      measured: report.worker.ratioToBare.toFixed(2),
      met: report.worker.ratioToBare >= 0.7,
    },
    {
      name: 'end-to-end overhead p99',
      target: `< 25 ms at ${report.endToEnd.offeredRate}/s`,
      measured: `${report.endToEnd.overheadMs.p99} ms`,
      met: report.endToEnd.overheadMs.p99 < 25,
    },
    {
      name: 'scaling',
      target: ">= 0.8 of Little's law in every row",
      measured: report.scaling.map((row) => row.ratio.toFixed(2)).join(' / '),
      met: scalingOk,
    },
    { name: 'memory', target: '< 150 MB resident (API and worker)', measured: `${maxRss} MB peak`, met: maxRss < 150 },
  ];
}

const n = (value: number) => value.toLocaleString('en-US', { maximumFractionDigits: 0 });
const ms = (value: number) => `${value.toFixed(1)} ms`;

function rows(report: BenchReport): string[][] {
  const { accept, duplicate, worker, endToEnd, scaling } = report;
  return [
    ['measurement', 'payonce', 'baseline', 'ratio'],
    [
      'accept path (req/s)',
      n(accept.subject.requestsPerSecond),
      `${n(accept.baseline.requestsPerSecond)} bare Fastify`,
      accept.ratio.toFixed(2),
    ],
    [
      'accept p50 / p99',
      `${ms(accept.subject.latencyP50Ms)} / ${ms(accept.subject.latencyP99Ms)}`,
      `${ms(accept.baseline.latencyP50Ms)} / ${ms(accept.baseline.latencyP99Ms)}`,
      '',
    ],
    [
      'duplicate path (req/s)',
      n(duplicate.subject.requestsPerSecond),
      `${n(duplicate.baseline.requestsPerSecond)} bare Fastify`,
      duplicate.ratio.toFixed(2),
    ],
    [
      'duplicate p50 / p99',
      `${ms(duplicate.subject.latencyP50Ms)} / ${ms(duplicate.subject.latencyP99Ms)}`,
      `${ms(duplicate.baseline.latencyP50Ms)} / ${ms(duplicate.baseline.latencyP99Ms)}`,
      '',
    ],
    [
      'worker, no delay (jobs/s)',
      n(worker.workerJobsPerSecond),
      `${n(worker.bareJobsPerSecond)} bare BullMQ worker`,
      worker.ratioToBare.toFixed(2),
    ],
    ['', '', `${n(worker.rawInsertsPerSecond)} raw single-row inserts`, worker.ratioToRawInserts.toFixed(2)],
    [
      `end-to-end overhead at ${endToEnd.offeredRate}/s`,
      `p50 ${ms(endToEnd.overheadMs.p50)}, p99 ${ms(endToEnd.overheadMs.p99)}`,
      `${endToEnd.purchases} purchases, ${endToEnd.delayMs} ms delay subtracted`,
      '',
    ],
    [
      '  of which queued (accepted -> taken)',
      `p50 ${ms(endToEnd.queueWaitMs.p50)}, p99 ${ms(endToEnd.queueWaitMs.p99)}`,
      '',
      '',
    ],
    [
      '  of which in the worker (taken -> written)',
      `p50 ${ms(endToEnd.inWorkerMs.p50)}, p99 ${ms(endToEnd.inWorkerMs.p99)}`,
      '',
      '',
    ],
    ...scaling.map((row) => [
      `scaling: ${row.label}`,
      `${n(row.jobsPerSecond)} jobs/s steady (${n(row.drainJobsPerSecond)} over the whole drain)`,
      `${n(row.predicted)} Little's law`,
      row.ratio.toFixed(2),
    ]),
    ...Object.entries(report.memory).map(([name, value]) => [`peak RSS: ${name}`, `${value} MB`, '', '']),
  ];
}

/** Where each request's or job's CPU went, in microseconds per process. */
function cpuRows(report: BenchReport): string[][] {
  const row = (label: string, cpu: CpuUse | undefined) =>
    cpu
      ? [
          label,
          n(cpu.process),
          n(cpu.redis),
          n(cpu.postgres),
          n(cpu.loadGenerator),
          n(cpu.process + cpu.redis + cpu.postgres + cpu.loadGenerator),
        ]
      : [label, '', '', '', '', ''];
  return [
    ['CPU per request or job (µs)', 'process', 'Redis', 'Postgres', 'load generator', 'total'],
    row('bare Fastify, distinct keys', report.accept.baseline.cpu),
    row('accept path', report.accept.subject.cpu),
    row('bare Fastify, one key', report.duplicate.baseline.cpu),
    row('duplicate path', report.duplicate.subject.cpu),
    row('BullMQ add alone (its client as process)', report.bullmqAddCpu),
    row('bare BullMQ worker', report.worker.cpu.bare),
    row('payonce worker', report.worker.cpu.worker),
    row(`end-to-end at ${report.endToEnd.offeredRate}/s (API + worker)`, report.endToEnd.cpu),
  ];
}

function renderPlain(table: string[][]): string[] {
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  const lines = table.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((width) => '-'.repeat(width)).join('  '));
  return lines;
}

const renderMarkdownTable = (table: string[][]) => [
  `| ${table[0]!.join(' | ')} |`,
  `|${table[0]!.map(() => '---').join('|')}|`,
  ...table.slice(1).map((row) => `| ${row.join(' | ')} |`),
];

/** A plain-text table for the terminal. */
export function renderTable(report: BenchReport): string {
  const verdicts = targets(report).map(
    (t) => `${t.met ? 'met ' : 'MISS'}  ${t.name}: ${t.measured} (target ${t.target})`,
  );
  return [
    `payonce benchmark${report.quick ? ' (quick)' : ''}, ${report.seconds} s`,
    ...renderPlain(rows(report)),
    '',
    ...renderPlain(cpuRows(report)),
    '',
    ...verdicts,
  ].join('\n');
}

/** The markers in BENCHMARKS.md between which a run's figures are written. */
export const BEGIN = '<!-- bench:begin (written by npm run bench; edit outside these markers) -->';
export const END = '<!-- bench:end -->';

/** BENCHMARKS.md with the figures replaced and everything outside the markers kept. */
export function renderMarkdown(report: BenchReport, previous: string): string {
  const markdown = [
    BEGIN,
    `Measured ${report.date.slice(0, 16).replace('T', ' ')} UTC in ${report.seconds} s on ${report.machine.cpu}, ${report.machine.memoryGb} GiB,`,
    `${report.machine.os}, Node ${report.machine.node}, ${report.machine.postgres}, ${report.machine.redis}.`,
    '',
    ...renderMarkdownTable(rows(report)),
    '',
    ...renderMarkdownTable(cpuRows(report)),
    '',
    '| target | goal | measured | met |',
    '|---|---|---|---|',
    ...targets(report).map((t) => `| ${t.name} | ${t.target} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`),
    END,
  ].join('\n');
  if (previous.includes(BEGIN) && previous.includes(END)) {
    return previous.slice(0, previous.indexOf(BEGIN)) + markdown + previous.slice(previous.indexOf(END) + END.length);
  }
  return `# Benchmarks\n\n${markdown}\n`;
}
