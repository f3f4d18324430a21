import { execFile } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import knex from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { httpApiEvent } from '../support/lambda-events.js';
import {
  createTestDatabase,
  deleteKeys,
  randomSuffix,
  TEST_REDIS_URL,
  testConfig,
  type TestDatabase,
} from '../support/services.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FUNCTIONS = ['api', 'worker', 'migrate'] as const;

/** Extracts every file of a zip into `dir`; returns the entry names. */
async function unzip(zipPath: string, dir: string): Promise<string[]> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true }, (error, opened) => (error ? reject(error) : resolve(opened))),
  );
  const names: string[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => {
      names.push(entry.fileName);
      zip.openReadStream(entry, (error, stream) => {
        if (error) return reject(error);
        const target = join(dir, entry.fileName);
        mkdir(dirname(target), { recursive: true })
          .then(() => pipeline(stream, createWriteStream(target)))
          .then(() => zip.readEntry(), reject);
      });
    });
    zip.readEntry();
  });
  return names;
}

/**
 * Loads an unpacked function in a fresh Node process, as the Lambda runtime does (`import()` of
 * index.js, from a directory with no node_modules above it), with only `env` (plus PATH) in its
 * environment, and optionally invokes its handler once. Returns its exports and the result.
 */
async function runBundle(
  dir: string,
  env: Record<string, string>,
  event?: unknown,
): Promise<{ exports: string[]; result?: unknown }> {
  const script = `
    const [file, eventJson] = process.argv.slice(1);
    const loaded = await import(file);
    const exported = Object.keys(loaded).filter((key) => key !== 'default' && key !== 'module.exports');
    let result;
    if (eventJson !== undefined) {
      const deadline = Date.now() + 30_000;
      const context = { functionName: 'payonce-test', awsRequestId: 'test', getRemainingTimeInMillis: () => deadline - Date.now() };
      result = await loaded.handler(JSON.parse(eventJson), context);
      await loaded.closeContainer?.();
    }
    process.stdout.write('\\nRESULT ' + JSON.stringify({ exports: exported.sort(), result }) + '\\n');
  `;
  const args = ['--input-type=module', '-e', script, pathToFileURL(join(dir, 'index.js')).href];
  if (event !== undefined) args.push(JSON.stringify(event));
  const { stdout } = await promisify(execFile)(process.execPath, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 30_000,
  });
  const line = stdout.split('\n').find((text) => text.startsWith('RESULT '));
  if (!line) throw new Error(`no result from ${dir}:\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length));
}

const unpacked: Record<string, { dir: string; entries: string[]; bytes: number }> = {};
let database: TestDatabase;
const prefix = testConfig().REDIS_KEY_PREFIX;
let workDir: string;
/** What infra/main.tf gives the functions, pointed at the local Postgres and Redis. */
let lambdaEnv: Record<string, string>;

beforeAll(async () => {
  // The build as CI and operators run it.
  await promisify(execFile)('npm', ['run', '-s', 'build:lambda'], { cwd: ROOT, timeout: 60_000 });
  database = await createTestDatabase();
  lambdaEnv = {
    NODE_ENV: 'production',
    NODE_OPTIONS: '--enable-source-maps',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.url,
    DATABASE_POOL_MAX: '2',
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    QUEUE_DRIVER: 'sqs',
    // Nothing listens there; the requests below do not reach the queue.
    SQS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/payonce-test-purchases.fifo',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  };
  workDir = await mkdtemp(join(tmpdir(), 'payonce-lambda-'));
  for (const name of FUNCTIONS) {
    const zip = join(ROOT, 'dist', 'lambda', `${name}.zip`);
    const dir = join(workDir, name);
    await mkdir(dir);
    unpacked[name] = { dir, entries: await unzip(zip, dir), bytes: (await stat(zip)).size };
  }
}, 90_000);

afterAll(async () => {
  await database?.drop();
  await deleteKeys(prefix);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('the Lambda zips from npm run build:lambda', () => {
  it('hold index.js (and its source map) only, are small, and sit where infra/ expects them', async () => {
    for (const name of FUNCTIONS) {
      const { dir, entries, bytes } = unpacked[name]!;
      expect(entries.sort()).toEqual(['index.js', 'index.js.map']);
      expect(bytes).toBeLessThan(5 * 1024 * 1024);
      expect((await readdir(dir)).sort()).toEqual(['index.js', 'index.js.map']);
    }
    // Nothing above the unpacked code could lend it a module the zip lacks.
    for (let dir = workDir; dir !== dirname(dir); dir = dirname(dir)) {
      expect(existsSync(join(dir, 'node_modules')), dir).toBe(false);
    }
  });

  it('load without missing modules and export `handler` (handler index.handler)', async () => {
    const loaded = await Promise.all(FUNCTIONS.map((name) => runBundle(unpacked[name]!.dir, lambdaEnv)));
    expect(loaded.map(({ exports }) => exports.includes('handler'))).toEqual([true, true, true]);
  });

  it('api.zip answers API Gateway v2 requests', async () => {
    const live = await runBundle(unpacked.api!.dir, lambdaEnv, httpApiEvent('GET', '/health/live'));
    expect(live.result).toMatchObject({ statusCode: 200, body: JSON.stringify({ status: 'ok' }) });
    const products = await runBundle(
      unpacked.api!.dir,
      lambdaEnv,
      httpApiEvent('GET', '/product', { apiKey: database.account.apiKey }),
    );
    expect(products.result).toMatchObject({ statusCode: 200, body: '[]' });
  });

  it('api.zip serves the OpenAPI document, and answers /docs and /demo with 404 (their files are not bundled)', async () => {
    const document = await runBundle(unpacked.api!.dir, lambdaEnv, httpApiEvent('GET', '/openapi.json'));
    const { statusCode, body } = document.result as { statusCode: number; body: string };
    expect(statusCode).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ openapi: '3.1.0', paths: { '/payment/purchase': {} } });
    const docs = await runBundle(unpacked.api!.dir, lambdaEnv, httpApiEvent('GET', '/docs'));
    expect(docs.result).toMatchObject({ statusCode: 404 });
    expect(JSON.parse((docs.result as { body: string }).body)).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    // Nor the checkout page, whose files are not bundled either.
    const page = await runBundle(unpacked.api!.dir, lambdaEnv, httpApiEvent('GET', '/demo'));
    expect(page.result).toMatchObject({ statusCode: 404 });
  });

  it('api.zip serves no queue dashboard, even with ADMIN_TOKEN: SQS has no BullMQ queue', async () => {
    const env = { ...lambdaEnv, ADMIN_TOKEN: 'test-admin-token-0123456789' };
    const board = await runBundle(unpacked.api!.dir, env, httpApiEvent('GET', '/admin/queues'));
    expect(board.result).toMatchObject({ statusCode: 404 });
    expect(JSON.parse((board.result as { body: string }).body)).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });

  it('worker.zip answers an (empty) SQS batch', async () => {
    const { result } = await runBundle(unpacked.worker!.dir, lambdaEnv, { Records: [] });
    expect(result).toEqual({ batchItemFailures: [] });
  });

  it('migrate.zip creates and migrates a database, sets up the application role, and seeds only when asked', async () => {
    const url = new URL(database.url);
    url.pathname = `/payonce_test_${randomSuffix()}`;
    // What infra/main.tf gives the migration function: no queue and no Redis, and from its secret
    // the master user's DATABASE_URL and the application role (roles are cluster-wide: a name of its own).
    const appRole = `payonce_app_test_${randomSuffix()}`;
    const env = {
      NODE_ENV: 'production',
      NODE_OPTIONS: '--enable-source-maps',
      LOG_LEVEL: 'silent',
      DATABASE_POOL_MAX: '2',
      DATABASE_URL: url.toString(),
      APP_DATABASE_ROLE: appRole,
      APP_DATABASE_PASSWORD: randomSuffix().repeat(4),
    };
    const admin = knex({ client: 'pg', connection: new URL('/postgres', url).toString() });
    try {
      expect((await runBundle(unpacked.migrate!.dir, env, {})).result).toEqual({
        databaseCreated: true,
        applied: [
          '20261128000000_create_users_products_payments',
          '20261202000000_create_gateway_charges',
          '20261202000100_create_purchases',
          '20261204000000_create_idempotency_claims',
          '20261204000100_create_accounts',
          '20261204000200_create_rate_limit_counters',
          '20261204000300_create_webhooks',
        ],
        seeded: false,
        appRole: { name: appRole, created: true },
      });
      expect((await runBundle(unpacked.migrate!.dir, env, { seed: true })).result).toEqual({
        databaseCreated: false,
        applied: [],
        seeded: true,
        appRole: { name: appRole, created: false },
      });
      // As the application role (this machine trusts local connections: no password check).
      const asApp = new URL(url);
      asApp.username = appRole;
      const db = knex({ client: 'pg', connection: asApp.toString() });
      try {
        expect((await db('users').count({ count: '*' }))[0]).toEqual({ count: '3' });
        await expect(db('knex_migrations').count()).rejects.toMatchObject({ code: '42501' });
      } finally {
        await db.destroy();
      }
    } finally {
      await admin.raw('drop database if exists ?? with (force)', [url.pathname.slice(1)]);
      await admin.raw('drop role if exists ??', [appRole]);
      await admin.destroy();
    }
  });
});
