import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApi, RunningProcess } from '../support/processes.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `npm run simulate:burst`'s script against the stack; resolves with its exit code and output. */
function simulateBurst(stack: ProcessStack, api: RunningApi, args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [`${ROOT}dist/scripts/simulate-burst.js`, '--url', api.url, ...args],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: stack.databaseUrl }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run simulate:burst against running processes', () => {
  let stack: ProcessStack;
  let api: RunningApi;
  let worker: RunningProcess;

  beforeAll(async () => {
    stack = await createProcessStack();
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
    });
    expect(report.drainSeconds).toBeGreaterThanOrEqual(0);
    expect(report.latencyMs.p99).toBeGreaterThan(0);
    // Exactly those 30 payments are in Postgres, one per accepted purchase.
    expect(await stack.payments()).toHaveLength(30);
  });

  it('prints a readable report, and exits 1 naming what was violated when payments never come', async () => {
    const healthy = await simulateBurst(stack, api, ['--pairs', '5', '--duplicates', '3']);
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.stdout).toMatch(/responses\s+202: 5, 204: 10/);
    expect(healthy.stdout).toContain('OK: every accepted purchase was paid exactly once');
    expect(healthy.stderr).toMatch(/waiting for 5 accepted purchases/);

    // Without a worker, accepted purchases are never paid: the simulator must say so.
    await worker.stop();
    const broken = await simulateBurst(stack, api, ['--pairs', '4', '--duplicates', '2', '--drain-timeout', '2']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/FAILED: 4 violation\(s\)/);
    expect(broken.stdout.match(/- lost_payment: accepted purchase [0-9a-f-]{36}/g)).toHaveLength(4);
    expect(broken.stdout).toMatch(/queue drain\s+did not finish in time/);
  });
});
