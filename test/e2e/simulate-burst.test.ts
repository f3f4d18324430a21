import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApi, RunningProcess } from '../support/processes.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `npm run simulate:burst`'s script against the stack; resolves with its exit code and output. */
function simulateBurst(stack: ProcessStack, api: RunningApi, args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [`${ROOT}dist/scripts/simulate-burst.js`, '--url', api.url, ...args],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: stack.databaseUrl, PAYONCE_API_KEY: stack.apiKey },
        timeout: 120_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe.each(STORE_BACKENDS)('npm run simulate:burst against running processes (%s backend)', (backend) => {
  let stack: ProcessStack;
  let api: RunningApi;
  let worker: RunningProcess;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    api = await stack.startApi();
    worker = await stack.startWorker();
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('fires waves of duplicates, waits for the queue, and proves every purchase was paid once (--json)', async () => {
    const { code, stdout, stderr } = await simulateBurst(stack, api, [
      '--pairs',
      '30',
      '--duplicates',
      '5',
      '--keys',
      '--waves',
      '2',
      '--pause',
      '100',
      '--json',
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({
      ok: true,
      violations: [],
      requests: 300,
      statusCounts: { 202: 30, 204: 270 },
      acceptedPurchases: 30,
      payments: { succeeded: 30, failed: 0 },
      gatewayCharges: 30,
    });
    expect(report.drainSeconds).toBeGreaterThanOrEqual(0);
    expect(report.latencyMs.p99).toBeGreaterThan(0);
    // Exactly those 30 payments are in Postgres, one per accepted purchase, each charged once.
    const payments = await stack.payments();
    expect(payments).toHaveLength(30);
    const charged: string[] = await stack.db('gateway_charges').pluck('purchase_id');
    expect(charged.sort()).toEqual(payments.map((row) => row.id).sort());
  });

  it('prints a readable report, and exits 1 naming what was violated when payments never come', async () => {
    const healthy = await simulateBurst(stack, api, ['--pairs', '5', '--duplicates', '3']);
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.stdout).toMatch(/responses\s+202: 5, 204: 10/);
    expect(healthy.stdout).toContain('OK: every accepted purchase was paid exactly once');
    expect(healthy.stdout).toMatch(/charges\s+5 at the gateway/);
    expect(healthy.stderr).toMatch(/waiting for 5 accepted purchases/);

    // Without a worker, accepted purchases are never paid: the simulator must say so.
    await worker.stop();
    const broken = await simulateBurst(stack, api, ['--pairs', '4', '--duplicates', '2', '--drain-timeout', '2']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/FAILED: 4 violation\(s\)/);
    expect(broken.stdout.match(/- lost_payment: accepted purchase [0-9a-f-]{36}/g)).toHaveLength(4);
    expect(broken.stdout).toMatch(/queue drain\s+did not finish in time/);
  });

  it('exits 1 when the gateway charged a purchase twice, though payments holds one row for it', async () => {
    // A planted fault where only the ledger shows it: every charge is booked a second time,
    // under another key, as a gateway that forgot the first charge would.
    await stack.db.raw(`
      create function charge_twice() returns trigger language plpgsql as $$
      begin
        if new.idempotency_key not like '%:again' then
          insert into gateway_charges (idempotency_key, purchase_id, amount)
            values (new.idempotency_key || ':again', new.purchase_id, new.amount);
        end if;
        return new;
      end $$;
      create trigger charge_twice after insert on gateway_charges for each row execute function charge_twice();
    `);
    try {
      await stack.startWorker();
      const doubled = await simulateBurst(stack, api, ['--pairs', '3', '--duplicates', '2']);
      expect(doubled.code).toBe(1);
      expect(doubled.stdout).toMatch(/payments\s+3 succeeded/);
      expect(doubled.stdout).toMatch(/FAILED: 3 violation\(s\)/);
      expect(
        doubled.stdout.match(/- charged_twice: user\/product \d+\/\d+ was charged 2 times at the gateway/g),
      ).toHaveLength(3);
    } finally {
      await stack.db.raw('drop trigger charge_twice on gateway_charges; drop function charge_twice()');
    }
  });
});
