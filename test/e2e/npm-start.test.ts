import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { isRunning, startNpmStart } from '../support/npm-start.js';
import { freePort } from '../support/processes.js';
import { deleteKeys, eventually, randomSuffix } from '../support/services.js';

const server = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payonce');
const database = `payonce_start_${randomSuffix()}`;
const prefix = `test_${randomSuffix()}`;
/** npm start keeps its demo key and admin token in PAYONCE_HOME: one of the test's own. */
const home = mkdtempSync(join(tmpdir(), 'payonce-start-'));

afterAll(async () => {
  rmSync(home, { recursive: true, force: true });
  const admin = knex({ client: 'pg', connection: new URL('/postgres', server).toString() });
  try {
    await admin.raw('drop database if exists ?? with (force)', [database]);
  } finally {
    await admin.destroy();
  }
  await deleteKeys(prefix);
});

/** `npm start` on the test's own database, key prefix and queue. */
function startService(port: number) {
  const url = new URL(server);
  url.pathname = `/${database}`;
  // No ADMIN_TOKEN: npm start makes one of its own.
  const { ADMIN_TOKEN: _admin, ...environment } = process.env;
  return startNpmStart(
    {
      ...environment,
      DATABASE_URL: url.toString(),
      PAYONCE_HOME: home,
      REDIS_KEY_PREFIX: prefix,
      QUEUE_NAME: `start_${randomSuffix()}`,
      PAYMENT_DELAY_MS: '100',
    },
    port,
  );
}

describe('npm start (scripts/start.ts)', () => {
  it('creates, migrates and seeds a new database, serves with a worker, and stops both cleanly on Ctrl-C', async () => {
    const service = startService(await freePort());
    try {
      await service.ready();
      const { base } = service;
      const auth = service.authorization();
      const products = (await (await fetch(`${base}/product`, { headers: auth })).json()) as Array<{ id: number }>;
      const users = (await (await fetch(`${base}/user`, { headers: auth })).json()) as Array<{ id: number }>;
      expect(products.length).toBeGreaterThan(0);
      // The checkout page carries the demo key npm start printed (HOST is loopback here).
      const page = await (await fetch(`${base}/demo`)).text();
      expect(page).toContain(`<meta name="payonce-demo-key" content="${service.apiKey()}" />`);
      expect(service.output()).toContain(`checkout: ${base}/demo (with the demo account's key)`);
      // DATABASE_URL set: that server, and no embedded one.
      expect(service.output()).toContain(`/${database} (DATABASE_URL)`);
      expect(service.output()).not.toContain('embedded');
      const response = await fetch(`${base}/payment/purchase`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', prefer: 'wait=20' },
        body: JSON.stringify({ userId: users[0]!.id, productId: products[0]!.id }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ status: 'succeeded' });
      // The operator token npm start made and printed opens the operator routes.
      const adminToken = /^admin: +(\S+)/m.exec(service.output())?.[1];
      expect(adminToken, service.output()).toBeDefined();
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
      expect(metrics.status).toBe(200);

      expect(await service.interrupt()).toBe(0);
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
      expect(pids, service.output()).toHaveLength(2);
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
      expect(
        (service.output().match(/the process that started this one is gone/g) ?? []).length,
        service.output(),
      ).toBe(2);
    } finally {
      service.cleanUp();
    }
  }, 60_000);
});
