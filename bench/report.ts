import type { LatencySummary } from '../scripts/burst/stats.js';
import type { Backend } from './context.js';
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

/** One row of the scaling matrix: worker processes x concurrency against Little's law. */
export interface ScalingRow {
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
}

/** What the bench measures of payonce on one store backend (STORE_BACKEND), beside that backend's baselines. */
export interface BackendFigures {
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
    /** Raw single-row inserts use no queue: one figure, shown for both backends. */
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
  scaling: ScalingRow[];
  memory: Record<string, number>;
}

/**
 * A run of `npm run bench` (BENCHMARKS.json). The figures at the top level are the Redis
 * backend's, as in every run recorded so far; `postgres` holds the same figures on the Postgres
 * backend (no Redis at all), absent from runs recorded before the bench measured it (up to run
 * 10), which the report shows as not measured.
 */
export interface BenchReport extends BackendFigures {
  /**
   * What the API key check and the rate limiter cost on the accept and duplicate paths (Redis):
   * the key check alone in process CPU per request, and both paths again with the limiter off.
   * Absent from runs recorded before accounts existed.
   */
  limits?: { keyCheckMicros: number; limiterOff: { accept: CpuUse; duplicate: CpuUse } };
  date: string;
  quick: boolean;
  machine: { cpu: string; memoryGb: number; os: string; node: string; postgres: string; redis: string };
  plan: Record<string, unknown>;
  postgres?: BackendFigures;
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

/** How each backend is named in the report, and its end-to-end p99 target (BENCHMARKS.md). */
const BACKENDS: Record<Backend, { label: string; endToEndP99Ms: number }> = {
  redis: { label: 'Redis', endToEndP99Ms: 25 },
  postgres: { label: 'Postgres', endToEndP99Ms: 50 },
};

/** Each backend's figures in the report, in order; undefined where the run did not measure them. */
const backendsOf = (report: BenchReport): Array<[Backend, BackendFigures | undefined]> => [
  ['redis', report],
  ['postgres', report.postgres],
];

/** payonce against the naive design: at least `times` its throughput. */
function aboveNaive(name: string, what: string, ratio: number | undefined, times: number): TargetVerdict {
  return ratio === undefined
    ? { name, target: `>= ${times}x the ${what}`, measured: NOT_MEASURED, met: null }
    : { name, target: `>= ${times}x the ${what}`, measured: `${ratio.toFixed(2)}x`, met: ratio >= times };
}

/** The targets of one backend, each named `<target> on <backend>`; not measured without its figures. */
function backendTargets(backend: Backend, figures: BackendFigures | undefined, offeredRate: number): TargetVerdict[] {
  const { label, endToEndP99Ms } = BACKENDS[backend];
  const on = (name: string) => `${name} on ${label}`;
  const verdict = (
    name: string,
    target: string,
    measure: (figures: BackendFigures) => Pick<TargetVerdict, 'measured' | 'met'>,
  ): TargetVerdict =>
    figures
      ? { name: on(name), target, ...measure(figures) }
      : { name: on(name), target, measured: NOT_MEASURED, met: null };
  return [
    aboveNaive(on('accept path'), 'naive service', figures?.accept.ratioToNaive, 1.2),
    aboveNaive(on('duplicate path'), 'naive service', figures?.duplicate.ratioToNaive, 1.2),
    aboveNaive(on('worker'), 'naive worker', figures?.worker.ratioToNaive, 1.5),
    verdict(
      'end-to-end overhead p99',
      `< ${endToEndP99Ms} ms at ${figures?.endToEnd.offeredRate ?? offeredRate}/s`,
      ({ endToEnd }) => ({ measured: `${endToEnd.overheadMs.p99} ms`, met: endToEnd.overheadMs.p99 < endToEndP99Ms }),
    ),
    verdict('scaling', ">= 0.8 of Little's law in every row", ({ scaling }) => ({
      measured: scaling.map((row) => row.ratio.toFixed(2)).join(' / '),
      met: scaling.every((row) => row.ratio >= 0.8),
    })),
    verdict('memory', '< 150 MB resident (API and worker)', ({ memory }) => {
      const maxRss = Math.max(
        memory.apiPeakRssMbAccept ?? 0,
        memory.apiPeakRssMbEndToEnd ?? 0,
        memory.workerPeakRssMbThroughput ?? 0,
        memory.workerPeakRssMbEndToEnd ?? 0,
      );
      return { measured: `${maxRss} MB peak`, met: maxRss < 150 };
    }),
  ];
}

/** Interleaves equal-length lists: the first item of each, then the second of each, and so on. */
const interleave = <T>(lists: T[][]): T[] => lists[0]!.flatMap((_, i) => lists.map((list) => list[i]!));

/**
 * The speed targets payonce is held to (BENCHMARKS.md), checked against a report: each target
 * on Redis, then on Postgres.
 */
export function targets(report: BenchReport): TargetVerdict[] {
  return interleave(
    backendsOf(report).map(([backend, figures]) => backendTargets(backend, figures, report.endToEnd.offeredRate)),
  );
}

const n = (value: number) => value.toLocaleString('en-US', { maximumFractionDigits: 0 });
const ms = (value: number) => `${value.toFixed(1)} ms`;

const latency = (result: LoadResult) => `${ms(result.latencyP50Ms)} / ${ms(result.latencyP99Ms)}`;

/** A path's throughput rows and latency rows on one backend: payonce against the naive service, then bare Fastify. */
function pathRows(name: string, on: string, path: PathComparison | undefined): [string[][], string[][]] {
  if (!path) {
    return [
      [[`${name} path on ${on} (req/s)`, NOT_MEASURED, '', '']],
      [[`${name} p50 / p99 on ${on}`, NOT_MEASURED, '', '']],
    ];
  }
  const { subject, naive, baseline } = path;
  return [
    [
      [
        `${name} path on ${on} (req/s)`,
        n(subject.requestsPerSecond),
        naive ? `${n(naive.requestsPerSecond)} naive service` : `naive service ${NOT_MEASURED}`,
        path.ratioToNaive?.toFixed(2) ?? '',
      ],
      ['', '', `${n(baseline.requestsPerSecond)} bare Fastify`, path.ratio.toFixed(2)],
    ],
    [
      [
        `${name} p50 / p99 on ${on}`,
        latency(subject),
        naive ? `${latency(naive)} naive service` : `naive service ${NOT_MEASURED}`,
        '',
      ],
      ['', '', `${latency(baseline)} bare Fastify`, ''],
    ],
  ];
}

function workerRows(on: string, figures: BackendFigures | undefined): string[][] {
  const label = `worker on ${on}, no delay (jobs/s)`;
  if (!figures) return [[label, NOT_MEASURED, '', '']];
  const { worker } = figures;
  return [
    [
      label,
      n(worker.workerJobsPerSecond),
      worker.naiveJobsPerSecond === undefined
        ? `naive worker ${NOT_MEASURED}`
        : `${n(worker.naiveJobsPerSecond)} naive worker`,
      worker.ratioToNaive?.toFixed(2) ?? '',
    ],
    ['', '', `${n(worker.bareJobsPerSecond)} bare BullMQ worker`, worker.ratioToBare.toFixed(2)],
    ['', '', `${n(worker.rawInsertsPerSecond)} raw single-row inserts`, worker.ratioToRawInserts.toFixed(2)],
  ];
}

function endToEndRows(on: string, figures: BackendFigures | undefined, offeredRate: number): string[][] {
  if (!figures) return [[`end-to-end overhead at ${offeredRate}/s on ${on}`, NOT_MEASURED, '', '']];
  const { endToEnd } = figures;
  return [
    [
      `end-to-end overhead at ${endToEnd.offeredRate}/s on ${on}`,
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
  ];
}

function scalingRows(on: string, figures: BackendFigures | undefined): string[][] {
  if (!figures) return [[`scaling on ${on}`, NOT_MEASURED, '', '']];
  return figures.scaling.map((row) => [
    `scaling on ${on}: ${row.label}`,
    `${n(row.jobsPerSecond)} jobs/s steady (${n(row.drainJobsPerSecond)} over the whole drain)`,
    `${n(row.predicted)} Little's law`,
    row.ratio.toFixed(2),
  ]);
}

function memoryRows(on: string, figures: BackendFigures | undefined): string[][] {
  if (!figures) return [[`peak RSS on ${on}`, NOT_MEASURED, '', '']];
  return Object.entries(figures.memory).map(([name, value]) => [`peak RSS on ${on}: ${name}`, `${value} MB`, '', '']);
}

/** The figures, each measurement on Redis beside the same on Postgres. */
function rows(report: BenchReport): string[][] {
  const backends = backendsOf(report).map(([backend, figures]) => ({ on: BACKENDS[backend].label, figures }));
  const paths = (name: string, path: (figures: BackendFigures) => PathComparison) => {
    const perBackend = backends.map(({ on, figures }) => pathRows(name, on, figures && path(figures)));
    return [...perBackend.flatMap(([throughput]) => throughput), ...perBackend.flatMap(([, latencies]) => latencies)];
  };
  const each = (render: (on: string, figures: BackendFigures | undefined) => string[][]) =>
    backends.flatMap(({ on, figures }) => render(on, figures));
  return [
    ['measurement', 'payonce', 'baseline', 'ratio'],
    ...paths('accept', (figures) => figures.accept),
    ...paths('duplicate', (figures) => figures.duplicate),
    ...each(workerRows),
    ...each((on, figures) => endToEndRows(on, figures, report.endToEnd.offeredRate)),
    ...each(scalingRows),
    ...each(memoryRows),
  ];
}

/** The CPU tables' rows: each label with its figure in a backend's figures, if the run measured it. */
function cpuSources(figures: BackendFigures | undefined, offeredRate: number): Array<[string, CpuUse | undefined]> {
  return [
    ['bare Fastify, distinct keys', figures?.accept.baseline.cpu],
    ['naive service, distinct keys', figures?.accept.naive?.cpu],
    ['accept path', figures?.accept.subject.cpu],
    ['bare Fastify, one key', figures?.duplicate.baseline.cpu],
    ['naive service, one key', figures?.duplicate.naive?.cpu],
    ['duplicate path', figures?.duplicate.subject.cpu],
    ['BullMQ add alone (its client as process)', figures?.bullmqAddCpu],
    ['bare BullMQ worker', figures?.worker.cpu.bare],
    ['naive worker', figures?.worker.cpu.naive],
    ['payonce worker', figures?.worker.cpu.worker],
    [`end-to-end at ${figures?.endToEnd.offeredRate ?? offeredRate}/s (API + worker)`, figures?.endToEnd.cpu],
  ];
}

/**
 * Where each request's or job's CPU went on one backend, in microseconds per process. On
 * Postgres there is no Redis column: Redis plays no part there, and is not metered.
 */
function cpuRows(backend: Backend, figures: BackendFigures | undefined, offeredRate: number): string[][] {
  const withRedis = backend === 'redis';
  const columns = withRedis
    ? ['process', 'Redis', 'Postgres', 'load generator', 'total']
    : ['process', 'Postgres', 'load generator', 'total'];
  const row = (label: string, cpu: CpuUse | undefined) =>
    cpu
      ? [
          label,
          n(cpu.process),
          ...(withRedis ? [n(cpu.redis)] : []),
          n(cpu.postgres),
          n(cpu.loadGenerator),
          n(cpu.process + cpu.redis + cpu.postgres + cpu.loadGenerator),
        ]
      : [label, NOT_MEASURED, ...columns.slice(1).map(() => '')];
  return [
    [`CPU on ${BACKENDS[backend].label}, per request or job (µs)`, ...columns],
    ...cpuSources(figures, offeredRate).map(([label, cpu]) => row(label, cpu)),
  ];
}

/**
 * The Redis table's extra rows: the accept and duplicate paths with the rate limiter off, beside
 * the same with it on (above), and the key check alone.
 */
function limitRows({ limits }: BenchReport): string[][] {
  if (!limits) return [];
  const row = (label: string, cpu: CpuUse) => [
    label,
    n(cpu.process),
    n(cpu.redis),
    n(cpu.postgres),
    n(cpu.loadGenerator),
    n(cpu.process + cpu.redis + cpu.postgres + cpu.loadGenerator),
  ];
  return [
    row('accept path, rate limiter off', limits.limiterOff.accept),
    row('duplicate path, rate limiter off', limits.limiterOff.duplicate),
    [
      'the API key check alone (in process, a cached key)',
      n(limits.keyCheckMicros),
      '',
      '',
      '',
      n(limits.keyCheckMicros),
    ],
  ];
}

/** Each backend's CPU table; Redis's with the cost of the key check and the limiter. */
const cpuTables = (report: BenchReport) =>
  backendsOf(report).map(([backend, figures]) => [
    ...cpuRows(backend, figures, report.endToEnd.offeredRate),
    ...(backend === 'redis' ? limitRows(report) : []),
  ]);

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
    ...cpuTables(report).flatMap((table) => [...renderPlain(table), '']),
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
    ...cpuTables(report).flatMap((table) => [...renderMarkdownTable(table), '']),
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
