import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLogLines, type RunningApi, type RunningProcess } from '../support/processes.js';
import { eventually, seedUserAndProduct } from '../support/services.js';
import { createPurchaseClient, purchaseIdIn, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';

/** The JSON log lines a process wrote so far. */
const logLines = (process: RunningProcess) => jsonLogLines(process.output());

/** The worker's lines about itself rather than about a purchase. */
const WORKER_LIFECYCLE = new Set(['worker started', 'shutting down: finishing in-flight jobs', 'shut down cleanly']);

describe.each(STORE_BACKENDS)('log lines about a purchase carry its purchaseId (%s backend)', (backend) => {
  let stack: ProcessStack;
  let api: RunningApi;
  let worker: RunningProcess;
  let client: PurchaseClient;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    api = await stack.startApi({ LOG_LEVEL: 'info' });
    worker = await stack.startWorker({ LOG_LEVEL: 'info' });
    client = createPurchaseClient(api.url);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('in the API (acceptance, duplicate, status reads) and in the worker', async () => {
    const { userId, productId } = await seedUserAndProduct(stack.db);
    const accepted = await client.purchase({ userId, productId });
    expect(accepted.status).toBe(202);
    const purchaseId = purchaseIdIn(accepted.headers.get('location'));
    await client.purchaseReaches(purchaseId, ['succeeded']);
    const duplicate = await client.purchase({ userId, productId });
    expect(duplicate.status).toBe(204);
    await worker.stop();

    // API: every request about this purchase ends with a line naming it, and so does the
    // service's own "purchase accepted".
    const apiLines = logLines(api);
    const requests = new Map(
      apiLines
        .filter((line) => line.msg === 'incoming request')
        .map((line) => [line.reqId, line.req as { method: string; url: string }]),
    );
    const aboutPurchases = apiLines.filter((line) => {
      const request = requests.get(line.reqId);
      return line.msg === 'request completed' && request?.url.startsWith('/payment/purchase');
    });
    // The POST, at least one status read, the duplicate.
    expect(aboutPurchases.length).toBeGreaterThanOrEqual(3);
    for (const line of aboutPurchases) expect(line.purchaseId, JSON.stringify(line)).toBe(purchaseId);
    expect(apiLines.filter((line) => line.msg === 'purchase accepted').map((line) => line.purchaseId)).toEqual([
      purchaseId,
    ]);

    // Worker: every line that is not about the process itself names its purchase.
    await eventually(() => (logLines(worker).some((line) => line.msg === 'shut down cleanly') ? true : undefined));
    const workerLines = logLines(worker).filter((line) => !WORKER_LIFECYCLE.has(line.msg ?? ''));
    expect(workerLines.map((line) => line.msg)).toContain('purchase finished');
    for (const line of workerLines) expect(line.purchaseId, JSON.stringify(line)).toBe(purchaseId);
  });
});
