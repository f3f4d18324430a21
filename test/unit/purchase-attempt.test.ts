import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { PurchaseJob } from '../../src/shared/purchase/purchase.js';
import { PermanentPurchaseError } from '../../src/worker/process-purchase.js';
import { createPurchaseAttempts } from '../../src/worker/purchase-attempt.js';
import { createSqsMessageSettler } from '../../src/worker/sqs/message-settler.js';

const job: PurchaseJob = {
  purchaseId: '00000000-0000-4000-8000-000000000042',
  userId: 1,
  productId: 2,
  amount: 700,
  idempotencyKey: 'user:1:product:2',
  acceptedAt: '2026-12-01T00:00:00.000Z',
};
const logger = pino({ level: 'silent' });
const outage = new Error('connect ECONNREFUSED');

function setup(isCharged?: (purchaseId: string) => Promise<boolean>) {
  const processor = { recordRetriesExhausted: vi.fn(async () => null) };
  const metrics = { attemptFailed: vi.fn() };
  return { processor, metrics, attempts: createPurchaseAttempts({ processor, logger, isCharged, metrics }) };
}

describe('the retry classification (purchase-attempt.ts)', () => {
  it('retries a transient failure before the last attempt, and stops at a permanent one', async () => {
    const { attempts, processor } = setup();
    await expect(attempts.classifyFailure(job, outage, { attempt: 1, attempts: 3 })).resolves.toBe('retry');
    await expect(
      attempts.classifyFailure(job, new PermanentPurchaseError('gone'), { attempt: 1, attempts: 3 }),
    ).resolves.toBe('permanent');
    expect(processor.recordRetriesExhausted).not.toHaveBeenCalled();
  });

  it('counts every classification, and every malformed job, once', async () => {
    const { attempts, processor, metrics } = setup(async (purchaseId) => purchaseId === 'charged');
    await attempts.classifyFailure(job, outage, { attempt: 1, attempts: 3 });
    await attempts.classifyFailure(job, new PermanentPurchaseError('gone'), { attempt: 1, attempts: 3 });
    await attempts.classifyFailure(job, outage, { attempt: 3, attempts: 3 });
    await attempts.classifyFailure({ ...job, purchaseId: 'charged' }, outage, { attempt: 3, attempts: 3 });
    processor.recordRetriesExhausted.mockRejectedValueOnce(new Error('redis down too'));
    await attempts.classifyFailure(job, outage, { attempt: 3, attempts: 3 });
    expect(attempts.parseJob({ purchaseId: 'x' }, { jobId: '1' })).toBeNull();
    expect(attempts.parseJob(job, { jobId: '2' })).toEqual(job);

    expect(metrics.attemptFailed.mock.calls.map(([result]) => result)).toEqual([
      'retry',
      'permanent',
      'exhausted',
      'unrecorded',
      'unrecorded',
      'malformed',
    ]);
  });

  it('records a purchase the gateway never charged as retries_exhausted on the last attempt', async () => {
    const { attempts, processor } = setup(async () => false);
    await expect(attempts.classifyFailure(job, outage, { attempt: 3, attempts: 3 })).resolves.toBe('exhausted');
    expect(processor.recordRetriesExhausted).toHaveBeenCalledExactlyOnceWith(job, outage);
  });

  it.each([
    ['charged by the gateway', async () => true],
    ['whose charge cannot be looked up', async () => Promise.reject(new Error('ledger down'))],
  ])('leaves a purchase %s unrecorded for the reconciler, never failed', async (_case, isCharged) => {
    const { attempts, processor } = setup(isCharged);
    await expect(attempts.classifyFailure(job, outage, { attempt: 3, attempts: 3 })).resolves.toBe('unrecorded');
    expect(processor.recordRetriesExhausted).not.toHaveBeenCalled();
  });

  it('leaves a failure that no store would take unrecorded', async () => {
    const { attempts, processor } = setup(async () => false);
    processor.recordRetriesExhausted.mockRejectedValueOnce(new Error('redis down too'));
    await expect(attempts.classifyFailure(job, outage, { attempt: 3, attempts: 3 })).resolves.toBe('unrecorded');
  });

  it('on SQS, keeps an unrecorded purchase in the queue on its last receive (the dead-letter queue gets it)', async () => {
    const settle = createSqsMessageSettler({
      processor: { processPurchase: async () => Promise.reject(outage), recordRetriesExhausted: vi.fn() },
      logger,
      attempts: 3,
      backoffMs: 1000,
      maxBackoffSeconds: 10,
      isCharged: async () => true,
    });
    const outcome = await settle({ messageId: 'm', body: JSON.stringify(job), receiveCount: 3 });
    expect(outcome).toMatchObject({ settled: false });
  });
});
