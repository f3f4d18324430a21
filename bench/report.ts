import type { LatencySummary } from '../scripts/burst/stats.js';
import type { CpuUse } from './cpu.js';
import type { LoadResult } from './load.js';

/**
 * One HTTP path under load: payonce (`subject`) against the naive service and bare Fastify
 * (`baseline`). The naive fields are absent from runs recorded before the naive service
 * existed (up to run 10); the report shows them as not measured.
 */
export interface PathComparison {
  /** Bare Fastify. */
  baseline: LoadResult;
  subject: LoadResult;
  /** payonce's req/s over bare Fastify's. */
  ratio: number;
  naive?: LoadResult;
  /** payonce's req/s over the naive service's. */
  ratioToNaive?: number;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  machine: { cpu: string; memoryGb: number; os: string; node: string; postgres: string; redis: string };
  plan: Record<string, unknown>;
  accept: PathComparison;
  duplicate: PathComparison;
  /** CPU per job of BullMQ's add alone (the client is the bench process). */
  bullmqAddCpu: CpuUse;
  /** The naive fields are absent from runs recorded before the naive worker existed (up to run 10). */
  worker: {
    jobs: number;
    bareJobsPerSecond: number;
    naiveJobsPerSecond?: number;
    workerJobsPerSecond: number;
    rawInsertsPerSecond: number;
    ratioToBare: number;
    ratioToNaive?: number;
    ratioToRawInserts: number;
    /** CPU per job while draining, of the bare worker's run, the naive worker's and payonce's. */
    cpu: { bare: CpuUse; naive?: CpuUse; worker: CpuUse };
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

/** A target's verdict; `met` is null when the run did not measure what it needs. */
export interface TargetVerdict {
  name: string;
  target: string;
  measured: string;
  met: boolean | null;
}

const NOT_MEASURED = 'not measured';

/** payonce against the naive design: at least `times` its throughput. */
function aboveNaive(name: string, what: string, ratio: number | undefined, times: number): TargetVerdict {
  return ratio === undefined
    ? { name, target: `>= ${times}x the ${what}`, measured: NOT_MEASURED, met: null }
    : { name, target: `>= ${times}x the ${what}`, measured: `${ratio.toFixed(2)}x`, met: ratio >= times };
}

/** The speed targets payonce is held to (BENCHMARKS.md), checked against a report. */
export function targets(report: BenchReport): TargetVerdict[] {
  const scalingOk = report.scaling.every((row) => row.ratio >= 0.8);
  const maxRss = Math.max(
    report.memory.apiPeakRssMbAccept ?? 0,
    report.memory.apiPeakRssMbEndToEnd ?? 0,
    report.memory.workerPeakRssMbThroughput ?? 0,
    report.memory.workerPeakRssMbEndToEnd ?? 0,
  );
  return [
    aboveNaive('accept path', 'naive service', report.accept.ratioToNaive, 1.2),
    aboveNaive('duplicate path', 'naive service', report.duplicate.ratioToNaive, 1.2),
    aboveNaive('worker', 'naive worker', report.worker.ratioToNaive, 1.5),
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

const latency = (result: LoadResult) => `${ms(result.latencyP50Ms)} / ${ms(result.latencyP99Ms)}`;

/** A path's throughput and latency: payonce against the naive service, then bare Fastify. */
function pathRows(name: string, path: PathComparison): string[][] {
  const { subject, naive, baseline } = path;
  return [
    [
      `${name} path (req/s)`,
      n(subject.requestsPerSecond),
      naive ? `${n(naive.requestsPerSecond)} naive service` : `naive service ${NOT_MEASURED}`,
      path.ratioToNaive?.toFixed(2) ?? '',
    ],
    ['', '', `${n(baseline.requestsPerSecond)} bare Fastify`, path.ratio.toFixed(2)],
    [
      `${name} p50 / p99`,
      latency(subject),
      naive ? `${latency(naive)} naive service` : `naive service ${NOT_MEASURED}`,
      '',
    ],
    ['', '', `${latency(baseline)} bare Fastify`, ''],
  ];
}

function rows(report: BenchReport): string[][] {
  const { accept, duplicate, worker, endToEnd, scaling } = report;
  return [
    ['measurement', 'payonce', 'baseline', 'ratio'],
    ...pathRows('accept', accept),
    ...pathRows('duplicate', duplicate),
    [
      'worker, no delay (jobs/s)',
      n(worker.workerJobsPerSecond),
      worker.naiveJobsPerSecond === undefined
        ? `naive worker ${NOT_MEASURED}`
        : `${n(worker.naiveJobsPerSecond)} naive worker`,
      worker.ratioToNaive?.toFixed(2) ?? '',
    ],
    ['', '', `${n(worker.bareJobsPerSecond)} bare BullMQ worker`, worker.ratioToBare.toFixed(2)],
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
      : [label, NOT_MEASURED, '', '', '', ''];
  return [
    ['CPU per request or job (µs)', 'process', 'Redis', 'Postgres', 'load generator', 'total'],
    row('bare Fastify, distinct keys', report.accept.baseline.cpu),
    row('naive service, distinct keys', report.accept.naive?.cpu),
    row('accept path', report.accept.subject.cpu),
    row('bare Fastify, one key', report.duplicate.baseline.cpu),
    row('naive service, one key', report.duplicate.naive?.cpu),
    row('duplicate path', report.duplicate.subject.cpu),
    row('BullMQ add alone (its client as process)', report.bullmqAddCpu),
    row('bare BullMQ worker', report.worker.cpu.bare),
    row('naive worker', report.worker.cpu.naive),
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
    (t) => `${t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS'}  ${t.name}: ${t.measured} (target ${t.target})`,
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
    ...targets(report).map(
      (t) =>
        `| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? NOT_MEASURED : t.met ? 'yes' : '**no**'} |`,
    ),
    END,
  ].join('\n');
  if (previous.includes(BEGIN) && previous.includes(END)) {
    return previous.slice(0, previous.indexOf(BEGIN)) + markdown + previous.slice(previous.indexOf(END) + END.length);
  }
  return `# Benchmarks\n\n${markdown}\n`;
}
