import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEMO_ACCOUNT, seed } from '../seeds/demo.js';
import { createAccountsRepository } from '../src/shared/accounts/accounts-repository.js';
import { loadAppSecretsOrExit, loadConfigOrExit } from '../src/shared/config.js';
import { createDb, ensureDatabaseExists, migrateLatest } from '../src/shared/db.js';
import { migrateQueueSchema } from '../src/shared/postgres/queue-schema.js';
import { embeddedDataDir, startEmbeddedPostgres, type EmbeddedPostgres } from './lib/embedded-postgres.js';
import { quickStartSecrets } from './lib/quick-start-secrets.js';

/**
 * `npm start`: without DATABASE_URL, starts the embedded PostgreSQL (its data in PAYONCE_HOME);
 * creates and migrates the database, seeds demo data into an empty one, then runs the API and
 * one worker as two processes until Ctrl-C, which stops both gracefully, then the embedded server.
 */
const env = await loadAppSecretsOrExit();
const config = loadConfigOrExit(env);

/** Where the embedded server keeps its data; undefined when DATABASE_URL names a server. */
const dataDir = env.DATABASE_URL ? undefined : embeddedDataDir(config.PAYONCE_HOME);
let embedded: EmbeddedPostgres | undefined;
const children = new Map<string, ChildProcess>();
let stopping = false;
let exitCode = 0;

function stopAll(signal: NodeJS.Signals): void {
  // npm and the terminal may both deliver the same Ctrl-C: forward only the first.
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) if (child.exitCode === null) child.kill(signal);
}
// Handled from the start: the embedded server runs in a session of its own and would outlive
// this process, so even a Ctrl-C during the set-up ends with `exit()` below.
process.on('SIGINT', () => stopAll('SIGINT'));
process.on('SIGTERM', () => stopAll('SIGTERM'));
process.on('SIGHUP', () => stopAll('SIGTERM'));

/** The last step: the embedded server stops once nothing uses it any more. */
async function exit(): Promise<never> {
  try {
    await embedded?.stop();
  } catch (error) {
    console.error('the embedded PostgreSQL did not stop:', error);
    exitCode ||= 1;
  }
  process.exit(exitCode);
}

/**
 * Creates and migrates the database (BullMQ's schema too, on the Postgres backend), seeds the
 * demo account into one that has no products, and returns the demo account's API key (null when
 * the database has data but no demo account).
 */
async function prepareDatabase(url: string): Promise<string | null> {
  await ensureDatabaseExists(url);
  const db = createDb({ ...config, DATABASE_URL: url });
  try {
    await migrateLatest(db);
    if (config.STORE_BACKEND === 'postgres') await migrateQueueSchema(url);
    const [{ count }] = (await db('products').count({ count: '*' })) as [{ count: string }];
    if (Number(count) === 0) {
      await seed(db);
      console.log('seeded the demo account with users and products (GET /user, GET /product)');
    }
    const accounts = createAccountsRepository({ db });
    const demoAccountId = await accounts.findAccountByName(DEMO_ACCOUNT);
    return demoAccountId === null ? null : (await secrets.demoApiKey(accounts, demoAccountId)).apiKey;
  } finally {
    await db.destroy();
  }
}

/** A URL as it may be printed: its password, if any, masked. */
function printable(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/** The demo account's key and the operator token, kept in PAYONCE_HOME across restarts. */
const secrets = quickStartSecrets(config.PAYONCE_HOME);
let demoApiKey: string | null = null;
let adminToken = '';
try {
  if (dataDir) {
    embedded = await startEmbeddedPostgres(dataDir, config.EMBEDDED_POSTGRES_PORT);
    if (embedded.initialised) console.log(`created a PostgreSQL cluster in ${dataDir}`);
  }
  demoApiKey = await prepareDatabase(embedded?.url ?? config.DATABASE_URL);
  adminToken = config.ADMIN_TOKEN ?? (await secrets.adminToken());
} catch (error) {
  // After a Ctrl-C the error is the interruption's: initdb runs in this process group and gets it too.
  if (!stopping) console.error(error);
  exitCode = 1;
  stopping = true;
}
if (stopping) await exit();

console.log(`API:      http://${config.HOST}:${config.PORT}`);
console.log(
  config.WORKER_HTTP_PORT === 0
    ? 'worker:   /health/* and /metrics on a port the OS picks (its "worker started" line names it)'
    : `worker:   http://${config.HOST}:${config.WORKER_HTTP_PORT} (/health/live, /health/ready, /metrics)`,
);
console.log(
  embedded
    ? `database: ${embedded.url} (embedded PostgreSQL on this machine, data in ${dataDir})`
    : `database: ${printable(config.DATABASE_URL)} (DATABASE_URL)`,
);
console.log(
  config.STORE_BACKEND === 'redis'
    ? `Redis:    used, ${printable(config.REDIS_URL)} (STORE_BACKEND=redis)`
    : 'Redis:    not used (STORE_BACKEND=postgres: claims, in-flight state and the queue live in PostgreSQL)',
);
console.log(
  demoApiKey
    ? `API key:  ${demoApiKey} (the demo account's; kept in ${secrets.demoKeyPath})`
    : `API key:  none printed: this database has no "${DEMO_ACCOUNT}" account (npm run -s account:create -- --name NAME)`,
);
console.log(
  config.ADMIN_TOKEN
    ? 'admin:    ADMIN_TOKEN as set (GET /metrics, /admin/queues)'
    : `admin:    ${adminToken} (ADMIN_TOKEN for GET /metrics and /admin/queues; kept beside the API key)`,
);

/** Whether only this machine can reach HOST: the checkout page then carries the demo key. */
const loopbackOnly = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(config.HOST);
console.log(
  demoApiKey && loopbackOnly
    ? `checkout: http://${config.HOST}:${config.PORT}/demo (with the demo account's key)`
    : `checkout: http://${config.HOST}:${config.PORT}/demo (it asks for an API key: HOST is not loopback-only)`,
);

const entry = (path: string) => fileURLToPath(new URL(path, import.meta.url));
// REDIS_URL and everything else pass through as set; only the embedded server's URL and the
// operator token are added, and the demo key for the API's checkout page, which shows it to
// whoever opens it: only when nothing but this machine can.
const childEnv = {
  ...process.env,
  ADMIN_TOKEN: adminToken,
  ...(embedded ? { DATABASE_URL: embedded.url } : {}),
};
const apiEnv = { ...childEnv, ...(demoApiKey && loopbackOnly ? { DEMO_API_KEY: demoApiKey } : {}) };
// Each child gets its own process group, so a Ctrl-C reaches it once, forwarded from here, and
// not also from the terminal (a second signal would make it exit without draining). The IPC
// channel closes if this process dies without forwarding anything (SIGKILL), and the child
// then shuts down gracefully by itself instead of running on unattended.
const start = (script: string, env: NodeJS.ProcessEnv) =>
  spawn(process.execPath, [entry(script)], {
    env,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
children.set('api', start('../src/api/server.js', apiEnv));
children.set('worker', start('../src/worker/main.js', childEnv));

for (const [name, child] of children) {
  child.on('exit', (code, signal) => {
    children.delete(name);
    if (!stopping) {
      // One process died on its own: stop the other rather than run half a service.
      console.error(`${name} exited (${signal ?? code}); stopping`);
      exitCode = 1;
      stopAll('SIGTERM');
    } else if (code !== 0) {
      exitCode = code ?? 1;
    }
    if (children.size === 0) void exit();
  });
}
