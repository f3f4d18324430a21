import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createDb } from '../src/shared/db.js';
import { createGatewayDb } from '../src/worker/payment-gateway.js';
import { summarize, type LatencySummary } from './burst/stats.js';
import { readDemoApiKey } from './lib/quick-start-secrets.js';
import {
  verifyBurst,
  type BurstPair,
  type BurstResponse,
  type ChargeRecord,
  type PaymentRecord,
  type Violation,
} from './burst/verify.js';

/**
 * `npm run simulate:burst` (alias `simulate:race-condition`): fires bursts of duplicate and
 * distinct purchases at a running payonce, then proves from Postgres (the payments, and the
 * simulated gateway's ledger of charges) that nothing was charged twice and nothing was lost.
 * Exits 1 and names every violation otherwise.
 */
const HELP = `Usage: npm run simulate:burst -- [options]

  --url URL           payonce API (default http://127.0.0.1:3000)
  --pairs N           distinct (user, product) purchases (default 200)
  --duplicates N      times each purchase is sent, concurrently (default 10)
  --keys              send an Idempotency-Key header with each purchase
  --concurrency N     requests in flight at most (default 100)
  --waves N           send the whole burst N times; later waves are all duplicates (default 1)
  --pause MS          pause between waves (default 1000)
  --drain-timeout S   how long to wait for the queue to drain (default 120)
  --json              print the report as JSON
  --api-key KEY       the API key to send (default PAYONCE_API_KEY, else the demo key npm start
                      keeps in PAYONCE_HOME, default .payonce/demo-api-key)
  DATABASE_URL        the Postgres that payonce writes to (default the local one)
  GATEWAY_DATABASE_URL  the simulated gateway's ledger, as the worker has it (default DATABASE_URL)`;

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:3000' },
    pairs: { type: 'string', default: '200' },
    duplicates: { type: 'string', default: '10' },
    keys: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '100' },
    waves: { type: 'string', default: '1' },
    pause: { type: 'string', default: '1000' },
    'drain-timeout': { type: 'string', default: '120' },
    json: { type: 'boolean', default: false },
    'api-key': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}

function positiveInt(name: string, value: string, max: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > max) {
    console.error(`--${name} must be an integer from 1 to ${max}\n\n${HELP}`);
    process.exit(2);
  }
  return number;
}

const options = {
  url: args.url.replace(/\/$/, ''),
  pairs: positiveInt('pairs', args.pairs, 100_000),
  duplicates: positiveInt('duplicates', args.duplicates, 10_000),
  keys: args.keys,
  concurrency: positiveInt('concurrency', args.concurrency, 10_000),
  waves: positiveInt('waves', args.waves, 100),
  pauseMs: Number(args.pause) || 0,
  drainTimeoutMs: positiveInt('drain-timeout', args['drain-timeout'], 3600) * 1000,
};
const apiKey =
  args['api-key'] ?? process.env.PAYONCE_API_KEY ?? (await readDemoApiKey(process.env.PAYONCE_HOME ?? '.payonce'));
if (!apiKey) {
  console.error(`no API key: pass --api-key, set PAYONCE_API_KEY, or run npm start once\n\n${HELP}`);
  process.exit(2);
}
const authorization = `Bearer ${apiKey}`;
const totalRequests = options.pairs * options.duplicates * options.waves;
if (totalRequests > 1_000_000) {
  console.error('refusing to send more than 1,000,000 requests in one run');
  process.exit(2);
}
const quiet = args.json;
const say = (line: string) => {
  if (!quiet) console.error(line);
};

async function api<T>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T | null; location: string | null }> {
  const response = await fetch(`${options.url}${path}`, {
    method,
    headers: body === undefined ? { authorization } : { authorization, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? (JSON.parse(text) as T) : null,
    location: response.headers.get('location'),
  };
}

/** Creates the run's own users (one per pair) and a few products through the API. */
async function createFixtures(run: string): Promise<BurstPair[]> {
  const products: number[] = [];
  for (let index = 0; index < Math.min(5, options.pairs); index++) {
    const created = await api<{ id: number }>('POST', '/product', {
      name: `burst ${run} #${index}`,
      price: 100 + index,
    });
    if (created.status !== 201 || !created.body) throw new Error(`creating a product answered ${created.status}`);
    products.push(created.body.id);
  }
  const pairs: BurstPair[] = [];
  const queue = Array.from({ length: options.pairs }, (_, index) => index);
  await Promise.all(
    Array.from({ length: Math.min(20, options.pairs) }, async () => {
      for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
        const created = await api<{ id: number }>('POST', '/user', { username: `burst_${run}_${index}` });
        if (created.status !== 201 || !created.body) throw new Error(`creating a user answered ${created.status}`);
        pairs[index] = { userId: created.body.id, productId: products[index % products.length]! };
      }
    }),
  );
  return pairs;
}

function progress(done: number, total: number, startedAt: number): void {
  if (quiet) return;
  const elapsed = (performance.now() - startedAt) / 1000;
  const rate = elapsed > 0 ? Math.round(done / elapsed) : 0;
  if (process.stderr.isTTY) {
    const width = 30;
    const filled = Math.round((done / total) * width);
    process.stderr.write(
      `\r  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} requests, ${rate}/s`,
    );
    if (done === total) process.stderr.write('\n');
  } else if (done === total || done % Math.max(1, Math.floor(total / 10)) === 0) {
    console.error(`  ${done}/${total} requests (${Math.round((done / total) * 100)}%), ${rate}/s`);
  }
}

/** Fires every wave; each wave sends every pair `duplicates` times, shuffled, `concurrency` at a time. */
async function fire(run: string, pairs: BurstPair[]) {
  const responses: BurstResponse[] = [];
  const latencies: number[] = [];
  const startedAt = performance.now();
  let done = 0;
  for (let wave = 0; wave < options.waves; wave++) {
    if (wave > 0) {
      say(`  pausing ${options.pauseMs} ms before wave ${wave + 1}`);
      await sleep(options.pauseMs);
    }
    const work = pairs.flatMap((_, pair) => Array.from({ length: options.duplicates }, () => pair));
    for (let i = work.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [work[i], work[j]] = [work[j]!, work[i]!];
    }
    await Promise.all(
      Array.from({ length: Math.min(options.concurrency, work.length) }, async () => {
        for (let pair = work.pop(); pair !== undefined; pair = work.pop()) {
          const { userId, productId } = pairs[pair]!;
          const headers: Record<string, string> = { authorization, 'content-type': 'application/json' };
          if (options.keys) headers['idempotency-key'] = `burst-${run}-${pair}`;
          const sentAt = performance.now();
          let status: number;
          let purchaseId: string | null = null;
          try {
            const response = await fetch(`${options.url}/payment/purchase`, {
              method: 'POST',
              headers,
              body: JSON.stringify({ userId, productId }),
              signal: AbortSignal.timeout(30_000),
            });
            status = response.status;
            const text = await response.text();
            if (status === 202 || status === 200) purchaseId = (JSON.parse(text) as { purchaseId: string }).purchaseId;
            if (status === 204) purchaseId = response.headers.get('location')?.split('/').pop() ?? null;
          } catch {
            status = 599; // network error or timeout: counted as a server error
          }
          latencies.push(performance.now() - sentAt);
          responses.push({ pair, status, purchaseId });
          progress(++done, totalRequests, startedAt);
        }
      }),
    );
  }
  return { responses, latencies, seconds: (performance.now() - startedAt) / 1000 };
}

interface Report {
  run: string;
  options: typeof options;
  requests: number;
  statusCounts: Record<string, number>;
  latencyMs: LatencySummary;
  requestsPerSecond: number;
  acceptedPurchases: number;
  drainSeconds: number | null;
  payments: { succeeded: number; failed: number };
  /** Charges in the gateway's ledger for the run's purchases. */
  gatewayCharges: number;
  violations: Violation[];
  ok: boolean;
}

async function main(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/payonce';
  const db = createDb({ DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: 2 });
  const gatewayDb = createGatewayDb({
    DATABASE_URL: databaseUrl,
    GATEWAY_DATABASE_URL: process.env.GATEWAY_DATABASE_URL || undefined,
  });
  try {
    say(
      `burst ${run}: ${options.pairs} purchases x ${options.duplicates} copies x ${options.waves} wave(s) -> ${options.url}`,
    );
    const pairs = await createFixtures(run);
    const fired = await fire(run, pairs);

    const accepted = [
      ...new Set(fired.responses.filter((r) => r.status === 202 || r.status === 200).map((r) => r.purchaseId!)),
    ];
    say(`  waiting for ${accepted.length} accepted purchases to be written`);
    const drainStart = performance.now();
    let drainSeconds: number | null = null;
    const deadline = Date.now() + options.drainTimeoutMs;
    while (Date.now() < deadline) {
      const [{ count }] = (await db('payments').whereIn('id', accepted).count({ count: '*' })) as [{ count: string }];
      if (Number(count) >= accepted.length) {
        drainSeconds = (performance.now() - drainStart) / 1000;
        break;
      }
      await sleep(100);
    }

    const userIds = pairs.map((pair) => pair.userId);
    const rows: Array<{ id: string; user_id: number; product_id: number; status: string; amount: number }> = await db(
      'payments',
    )
      .whereIn('user_id', userIds)
      .select('id', 'user_id', 'product_id', 'status', 'amount');
    const payments: PaymentRecord[] = rows.map((row) => ({
      purchaseId: row.id,
      userId: row.user_id,
      productId: row.product_id,
      status: row.status,
      amount: row.amount,
    }));
    // Charges of every purchase the run knows of: accepted, pointed at by a duplicate, or paid.
    const known = new Set([...accepted, ...rows.map((row) => row.id)]);
    for (const response of fired.responses) if (response.purchaseId) known.add(response.purchaseId);
    // One array parameter, however many purchases (a list of values is capped at 65 535).
    const charged = await gatewayDb<{ purchase_id: string; amount: number }>('gateway_charges')
      .whereRaw('purchase_id = any(?::uuid[])', [[...known]])
      .select('purchase_id', 'amount');
    const charges: ChargeRecord[] = charged.map((row) => ({ purchaseId: row.purchase_id, amount: row.amount }));
    const violations = verifyBurst({ pairs, responses: fired.responses, payments, charges });

    const statusCounts: Record<string, number> = {};
    for (const response of fired.responses) statusCounts[response.status] = (statusCounts[response.status] ?? 0) + 1;
    const report: Report = {
      run,
      options,
      requests: fired.responses.length,
      statusCounts,
      latencyMs: summarize(fired.latencies),
      requestsPerSecond: Math.round(fired.responses.length / fired.seconds),
      acceptedPurchases: accepted.length,
      drainSeconds: drainSeconds === null ? null : Math.round(drainSeconds * 100) / 100,
      payments: {
        succeeded: payments.filter((p) => p.status === 'succeeded').length,
        failed: payments.filter((p) => p.status === 'failed').length,
      },
      gatewayCharges: charges.length,
      violations,
      ok: violations.length === 0,
    };
    if (args.json) console.log(JSON.stringify(report, null, 2));
    else printReport(report);
    process.exitCode = report.ok ? 0 : 1;
  } finally {
    await db.destroy();
    await gatewayDb.destroy();
  }
}

function printReport(report: Report): void {
  const { latencyMs: l } = report;
  const lines = [
    '',
    `requests      ${report.requests} in ${report.options.waves} wave(s), ${report.requestsPerSecond} req/s`,
    `responses     ${Object.entries(report.statusCounts)
      .map(([status, n]) => `${status}: ${n}`)
      .join(', ')}`,
    `latency (ms)  p50 ${l.p50}  p95 ${l.p95}  p99 ${l.p99}  max ${l.max}`,
    `accepted      ${report.acceptedPurchases} purchases for ${report.options.pairs} pairs`,
    `queue drain   ${report.drainSeconds === null ? 'did not finish in time' : `${report.drainSeconds} s after the last response`}`,
    `payments      ${report.payments.succeeded} succeeded, ${report.payments.failed} failed (declined)`,
    `charges       ${report.gatewayCharges} at the gateway`,
    '',
    report.ok
      ? 'OK: every accepted purchase was paid exactly once; no duplicate was charged.'
      : `FAILED: ${report.violations.length} violation(s):\n${report.violations
          .slice(0, 50)
          .map((v) => `  - ${v.kind}: ${v.detail}`)
          .join('\n')}${report.violations.length > 50 ? `\n  … and ${report.violations.length - 50} more` : ''}`,
  ];
  console.log(lines.join('\n'));
}

await main();
