import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import knex from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/processes.js';
import { deleteKeys, eventually, randomSuffix } from '../support/services.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const server = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payonce');
const database = `payonce_start_${randomSuffix()}`;
const prefix = `test_${randomSuffix()}`;

afterAll(async () => {
  const admin = knex({ client: 'pg', connection: new URL('/postgres', server).toString() });
  await admin.raw('drop database if exists ?? with (force)', [database]).finally(() => admin.destroy());
  await deleteKeys(prefix);
});

describe('npm start (scripts/start.ts)', () => {
  it('creates, migrates and seeds a new database, serves with a worker, and stops both cleanly on Ctrl-C', async () => {
    const port = await freePort();
    const url = new URL(server);
    url.pathname = `/${database}`;
    // Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    const child = spawn(process.execPath, [`${ROOT}dist/scripts/start.js`], {
      cwd: ROOT,
      detached: true,
      env: {
        ...process.env,
        DATABASE_URL: url.toString(),
        PORT: String(port),
        REDIS_KEY_PREFIX: prefix,
        QUEUE_NAME: `start_${randomSuffix()}`,
        PAYMENT_DELAY_MS: '100',
        LOG_PRETTY: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${port}`;
      await eventually(async () => ((await fetch(`${base}/health/ready`).catch(() => null))?.ok ? true : undefined), {
        timeoutMs: 30_000,
        what: `npm start to serve:\n${output}`,
      });
      // Readiness is the API's; the worker starts alongside and may be slower on a loaded machine.
      await eventually(() => (output.includes('worker started') ? true : undefined), {
        timeoutMs: 30_000,
        what: `the worker to start:\n${output}`,
      });
      const products = (await (await fetch(`${base}/product`)).json()) as Array<{ id: number }>;
      const users = (await (await fetch(`${base}/user`)).json()) as Array<{ id: number }>;
      expect(products.length).toBeGreaterThan(0);
      const response = await fetch(`${base}/payment/purchase`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'wait=20' },
        body: JSON.stringify({ userId: users[0]!.id, productId: products[0]!.id }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ status: 'succeeded' });

      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      await eventually(() => ((output.match(/shut down cleanly/g) ?? []).length === 2 ? true : undefined), {
        timeoutMs: 5_000,
        what: `both processes to report a clean shutdown:\n${output}`,
      });
      expect(output).not.toMatch(/second SIGINT|exiting abruptly|killed by timeout/);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
      // The API and worker run in process groups of their own; on a failed run, end them too.
      for (const match of output.matchAll(/"pid":(\d+)/g)) {
        try {
          process.kill(Number(match[1]), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }, 60_000);
});
