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
  try {
    await admin.raw('drop database if exists ?? with (force)', [database]);
  } finally {
    await admin.destroy();
  }
  await deleteKeys(prefix);
});

/** `npm start`'s script in a process group of its own, as a terminal's foreground job. */
function startService(port: number) {
  const url = new URL(server);
  url.pathname = `/${database}`;
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
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  const service = {
    child,
    exited,
    base,
    output: () => output,
    /** The API's and the worker's pids, from their log lines. */
    childPids: () => [...new Set([...output.matchAll(/"pid":(\d+)/g)].map((match) => Number(match[1])))],
    /** Waits until the API answers ready and the worker has started. */
    async ready() {
      await eventually(async () => ((await fetch(`${base}/health/ready`).catch(() => null))?.ok ? true : undefined), {
        timeoutMs: 30_000,
        what: `npm start to serve:\n${output}`,
      });
      // Readiness is the API's; the worker starts alongside and may be slower on a loaded machine.
      await eventually(() => (output.includes('worker started') ? true : undefined), {
        timeoutMs: 30_000,
        what: `the worker to start:\n${output}`,
      });
    },
    /** Ends whatever is left of a failed run: the group, and the children in groups of their own. */
    cleanUp() {
      for (const pid of [-child.pid!, ...service.childPids()]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
  return service;
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start (scripts/start.ts)', () => {
  it('creates, migrates and seeds a new database, serves with a worker, and stops both cleanly on Ctrl-C', async () => {
    const service = startService(await freePort());
    try {
      await service.ready();
      const { base } = service;
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

      process.kill(-service.child.pid!, 'SIGINT');
      expect(await service.exited).toBe(0);
      await eventually(() => ((service.output().match(/shut down cleanly/g) ?? []).length === 2 ? true : undefined), {
        timeoutMs: 5_000,
        what: `both processes to report a clean shutdown:\n${service.output()}`,
      });
      expect(service.output()).not.toMatch(/second SIGINT|exiting abruptly|killed by timeout/);
    } finally {
      service.cleanUp();
    }
  }, 60_000);

  it('leaves no API or worker running when npm start itself is SIGKILLed', async () => {
    const service = startService(await freePort());
    try {
      await service.ready();
      const pids = service.childPids();
      expect(pids).toHaveLength(2);
      // Only the parent dies, without a chance to forward anything.
      process.kill(service.child.pid!, 'SIGKILL');
      await eventually(() => (pids.every((pid) => !isRunning(pid)) ? true : undefined), {
        timeoutMs: 20_000,
        what: `the API and the worker to exit:\n${service.output()}`,
      });
      // Their last lines may still be on the way through the pipe.
      await eventually(() => ((service.output().match(/shut down cleanly/g) ?? []).length === 2 ? true : undefined), {
        timeoutMs: 5_000,
        what: `both processes to report a clean shutdown:\n${service.output()}`,
      });
      expect((service.output().match(/the process that started this one is gone/g) ?? []).length).toBe(2);
    } finally {
      service.cleanUp();
    }
  }, 60_000);
});
