import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { embeddedDatabaseUrl, embeddedDataDir } from '../../scripts/lib/embedded-postgres.js';
import { CONFIG_KEYS, loadConfig } from '../../src/shared/config.js';
import { isRunning, startNpmStart, type NpmStart } from './npm-start.js';
import { jsonLogLines } from './processes.js';
import { authorization, createPurchaseClient, purchaseIdIn, statusCounts, useApiKey } from './purchase-client.js';
import { eventually } from './services.js';

/*
 * The quick start as a fresh machine runs it, for test/e2e/quick-start.test.ts, which runs this
 * script inside a network namespace of its own (`unshare -n`): nothing listens there on 5432 or
 * 6379, and npm start's default ports are free. npm start runs twice on one data folder, with
 * its defaults and none of payonce's variables but PAYONCE_HOME (and a short payment delay).
 *
 *   node --import tsx test/support/quick-start-scenario.ts <PAYONCE_HOME>
 *
 * There is no Redis in the namespace: npm start runs on the Postgres store backend. Prints
 * `PID <n>` for every process it learns of, so the test can end what a killed run leaves, and
 * last `RESULT <json>`: what it saw, for the test to compare.
 */

const [home] = process.argv.slice(2);
if (!home) throw new Error('usage: quick-start-scenario.ts <PAYONCE_HOME>');
const dataDir = embeddedDataDir(home);
const defaults = loadConfig({});
const DATABASE_URL = embeddedDatabaseUrl(defaults.EMBEDDED_POSTGRES_PORT);
const BURST = 20;

const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !CONFIG_KEYS.includes(key))),
  PAYONCE_HOME: home,
  PAYMENT_DELAY_MS: '100',
  // The default, as a fresh machine has it (startNpmStart would pick a free port instead).
  WORKER_HTTP_PORT: String(defaults.WORKER_HTTP_PORT),
};

const pids = new Set<number>();
const reportPids = (...found: number[]) => {
  for (const pid of found.filter((pid) => !pids.has(pid))) {
    pids.add(pid);
    console.log(`PID ${pid}`);
  }
};

/** The burst's rows, by its user and product, which nothing else buys: one of each is right. */
async function burstRows(userId: number, productId: number) {
  const client = new pg.Client(DATABASE_URL);
  await client.connect();
  try {
    const { rows } = await client.query<Record<'purchases' | 'payments' | 'charges', number>>(
      `select (select count(*)::int from purchases where user_id = $1 and product_id = $2) as purchases,
              (select count(*)::int from payments where user_id = $1 and product_id = $2) as payments,
              (select count(*)::int from gateway_charges c join purchases p on p.id = c.purchase_id
                where p.user_id = $1 and p.product_id = $2) as charges`,
      [userId, productId],
    );
    return rows[0]!;
  } finally {
    await client.end();
  }
}

/**
 * Whether PostgreSQL got its shutdown request after the API and the worker had shut down, per
 * their log lines' times and the server log's (`2026-12-04 13:40:28.900 UTC [pid] LOG: …`).
 */
function serverStoppedLast(output: string): boolean {
  const children = jsonLogLines(output).filter((line) => line.msg === 'shut down cleanly');
  const server = readFileSync(join(dataDir, 'server.log'), 'utf8');
  const requests = [...server.matchAll(/^(\S+ \S+ \S+) \[\d+\] LOG: +received fast shutdown request$/gm)];
  const requested = Date.parse(requests.at(-1)?.[1] ?? '');
  return children.length === 2 && children.every((line) => Number(line.time) <= requested);
}

/**
 * One npm start: waits until it serves, runs `use`, then Ctrl-C; reports how it started and
 * ended, and which of its processes (npm start, API, worker, PostgreSQL) outlived it.
 */
async function run<T>(use: (service: NpmStart) => Promise<T>) {
  const service = startNpmStart(env, defaults.PORT);
  reportPids(service.child.pid!);
  try {
    await service.ready();
    const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    reportPids(...service.childPids(), postmaster);
    // The demo account's key, as npm start printed it, for every client of this run.
    useApiKey(service.base, service.apiKey());
    const seen = await use(service);
    const exitCode = await service.interrupt();
    const ours = [service.child.pid!, ...service.childPids(), postmaster];
    // npm start exits after pg_ctl saw the server gone; the wait only covers a failure.
    const leftovers = await eventually(() => (ours.some(isRunning) ? undefined : []), {
      timeoutMs: 10_000,
      what: 'npm start, its children and PostgreSQL to exit',
    }).catch(() => ours.filter(isRunning));
    const output = service.output();
    return {
      initialised: output.includes('created a PostgreSQL cluster'),
      seeded: output.includes('seeded the demo account'),
      apiKey: service.apiKey(),
      printed: output.split('\n').filter((line) => /^(API|worker|database|Redis):/.test(line)),
      ...seen,
      exitCode,
      cleanShutdowns: (output.match(/shut down cleanly/g) ?? []).length,
      serverStoppedLast: serverStoppedLast(output),
      leftovers,
    };
  } catch (error) {
    console.error(service.output());
    throw error;
  } finally {
    service.cleanUp();
  }
}

{
  let earlierPurchase = '';
  const burstBuyer = { userId: 0, productId: 0 };

  const first = await run(async ({ base }) => {
    const client = createPurchaseClient(base);
    const headers = authorization(base);
    const users = (await (await fetch(`${base}/user`, { headers })).json()) as Array<{ id: number }>;
    const products = (await (await fetch(`${base}/product`, { headers })).json()) as Array<{ id: number }>;
    const waited = await client.purchase({ userId: users[0]!.id, productId: products[0]!.id }, { prefer: 'wait=10' });
    earlierPurchase = purchaseIdIn(waited.headers.get('location'));
    Object.assign(burstBuyer, { userId: users[1]!.id, productId: products[1]!.id });
    const burst = await Promise.all(
      Array.from({ length: BURST }, () => client.purchase(burstBuyer, { idempotencyKey: 'quick-start-burst' })),
    );
    const locations = new Set(burst.map((result) => result.headers.get('location')));
    const workerReady = await fetch(`http://127.0.0.1:${defaults.WORKER_HTTP_PORT}/health/ready`);
    const burstOutcome = await client.purchaseReaches(purchaseIdIn([...locations][0]), ['succeeded', 'failed']);
    return {
      waited: { status: waited.status, purchase: (waited.body as { status?: string } | null)?.status },
      burst: statusCounts(burst),
      burstLocations: locations.size,
      burstOutcome: burstOutcome.status,
      workerReady: workerReady.status,
      rows: await burstRows(burstBuyer.userId, burstBuyer.productId),
    };
  });

  const second = await run(async ({ base }) => {
    const earlier = await createPurchaseClient(base).getPurchase(earlierPurchase);
    return {
      earlier: { status: earlier.status, purchase: (earlier.body as { status?: string } | null)?.status },
      rows: await burstRows(burstBuyer.userId, burstBuyer.productId),
    };
  });
  console.log(`RESULT ${JSON.stringify({ first, second })}`);
}
