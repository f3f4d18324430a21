import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { ReferenceGoneError, type PaymentOutcome } from '../../src/shared/purchase/payments-repository.js';
import { FAILURE_REASONS, type Purchase, type PurchaseJob } from '../../src/shared/purchase/purchase.js';
import { declinesKey, type PaymentGateway } from '../../src/worker/payment-gateway.js';
import { createPurchaseProcessor, PermanentPurchaseError } from '../../src/worker/process-purchase.js';

const job: PurchaseJob = {
  purchaseId: '00000000-0000-4000-8000-00000000000a',
  userId: 1,
  productId: 2,
  amount: 700,
  idempotencyKey: 'user:1:product:2',
  acceptedAt: '2026-11-28T00:00:00.000Z',
};

/** An in-memory payments table with the real one's first-write-wins contract (logic only). */
function fakePayments() {
  const rows = new Map<string, Purchase>();
  return {
    rows,
    findPayment: vi.fn(async (id: string) => rows.get(id) ?? null),
    recordPayment: vi.fn(async (j: PurchaseJob, outcome: PaymentOutcome) => {
      const existing = rows.get(j.purchaseId);
      if (existing) return existing;
      const row: Purchase = {
        purchaseId: j.purchaseId,
        userId: j.userId,
        productId: j.productId,
        amount: j.amount,
        ...outcome,
        createdAt: new Date(j.acceptedAt),
        updatedAt: new Date(),
      };
      rows.set(j.purchaseId, row);
      return row;
    }),
  };
}

/** A metrics sink that keeps what it was told. */
function fakeMetrics() {
  return { stepEnded: vi.fn(), purchaseRecorded: vi.fn() };
}

function setup(declineRate = 0, metrics?: ReturnType<typeof fakeMetrics>) {
  const payments = fakePayments();
  const states = { markProcessing: vi.fn(async () => {}), markFinished: vi.fn(async () => {}) };
  // The simulated gateway's decision without its ledger (test/integration/payment-gateway.test.ts has that).
  const gateway: PaymentGateway = {
    charge: async ({ purchaseId }) =>
      declinesKey(purchaseId, declineRate)
        ? { approved: false, reason: FAILURE_REASONS.CARD_DECLINED }
        : { approved: true },
  };
  const charge = vi.spyOn(gateway, 'charge');
  const processor = createPurchaseProcessor({ payments, states, gateway, logger: pino({ level: 'silent' }), metrics });
  return { processor, payments, states, charge };
}

describe('processPurchase', () => {
  it('charges, writes one payment and announces it', async () => {
    const { processor, payments, states, charge } = setup();
    const result = await processor.processPurchase(job);
    expect(result).toMatchObject({ purchaseId: job.purchaseId, status: 'succeeded', amount: 700, failureReason: null });
    expect(charge).toHaveBeenCalledWith({ purchaseId: job.purchaseId, amount: 700 });
    expect(states.markProcessing).toHaveBeenCalledWith({
      purchaseId: job.purchaseId,
      idempotencyKey: job.idempotencyKey,
    });
    expect(states.markFinished).toHaveBeenCalledWith(result, { idempotencyKey: job.idempotencyKey });
    expect(payments.rows.size).toBe(1);
  });

  it('skips the payment lookup only on a first run', async () => {
    const { processor, payments } = setup();
    await processor.processPurchase(job, { firstRun: true });
    expect(payments.findPayment).not.toHaveBeenCalled();
    await processor.processPurchase(job);
    expect(payments.findPayment).toHaveBeenCalledWith(job.purchaseId);
  });

  it('does not charge again for a purchase already written (redelivery)', async () => {
    const { processor, charge, payments } = setup();
    const first = await processor.processPurchase(job);
    const second = await processor.processPurchase(job);
    expect(second).toEqual(first);
    expect(charge).toHaveBeenCalledTimes(1);
    expect(payments.recordPayment).toHaveBeenCalledTimes(1);
  });

  it('records a decline as a final failure with its reason', async () => {
    const { processor } = setup(1);
    await expect(processor.processPurchase(job)).resolves.toMatchObject({
      status: 'failed',
      failureReason: 'card_declined',
    });
  });

  it('makes a deleted user or product a permanent failure, visible as failed', async () => {
    const { processor, payments, states } = setup();
    payments.recordPayment.mockRejectedValueOnce(
      new ReferenceGoneError(Object.assign(new Error('fk'), { code: '23503' })),
    );
    await expect(processor.processPurchase(job)).rejects.toBeInstanceOf(PermanentPurchaseError);
    expect(states.markFinished).toHaveBeenCalledWith(
      expect.objectContaining({ status: 'failed', failureReason: 'user_or_product_gone' }),
      { idempotencyKey: job.idempotencyKey, inPostgres: false },
    );
  });

  it('rethrows transient failures for the queue to retry', async () => {
    const { processor, payments } = setup();
    const outage = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    payments.findPayment.mockRejectedValueOnce(outage);
    await expect(processor.processPurchase(job)).rejects.toBe(outage);
  });

  it('records a purchase whose retries ran out as failed', async () => {
    const { processor, payments } = setup();
    await expect(processor.recordRetriesExhausted(job, new Error('db down'))).resolves.toMatchObject({
      status: 'failed',
      failureReason: 'retries_exhausted',
    });
    expect(payments.rows.get(job.purchaseId)?.status).toBe('failed');
  });

  it('keeps the failure visible in Redis, for the long unrecorded TTL, when Postgres cannot take it', async () => {
    const { processor, payments, states } = setup();
    payments.recordPayment.mockRejectedValueOnce(new Error('db down'));
    await expect(processor.recordRetriesExhausted(job, new Error('db down'))).resolves.toBeNull();
    expect(states.markFinished).toHaveBeenCalledWith(
      expect.objectContaining({ status: 'failed', failureReason: 'retries_exhausted' }),
      { idempotencyKey: job.idempotencyKey, inPostgres: false },
    );
  });

  describe('its metrics', () => {
    const outcomes = (metrics: ReturnType<typeof fakeMetrics>) =>
      metrics.stepEnded.mock.calls.map(([outcome]) => outcome);

    it('times every run by outcome and counts each outcome it records once', async () => {
      const metrics = fakeMetrics();
      const { processor, payments } = setup(0, metrics);
      await processor.processPurchase(job);
      await processor.processPurchase(job); // a redelivery
      payments.findPayment.mockRejectedValueOnce(new Error('connect ECONNREFUSED'));
      await processor.processPurchase(job).catch(() => {});

      expect(outcomes(metrics)).toEqual(['succeeded', 'already_recorded', 'error']);
      for (const [, seconds] of metrics.stepEnded.mock.calls) expect(seconds).toBeGreaterThanOrEqual(0);
      expect(metrics.purchaseRecorded.mock.calls).toEqual([['succeeded', null]]);
    });

    it('counts a decline as failed with its reason', async () => {
      const metrics = fakeMetrics();
      await setup(1, metrics).processor.processPurchase(job);
      expect(outcomes(metrics)).toEqual(['failed']);
      expect(metrics.purchaseRecorded.mock.calls).toEqual([['failed', 'card_declined']]);
    });

    it('counts a deleted user or product as failed, in a run that ends in an error', async () => {
      const metrics = fakeMetrics();
      const { processor, payments } = setup(0, metrics);
      payments.recordPayment.mockRejectedValueOnce(
        new ReferenceGoneError(Object.assign(new Error('fk'), { code: '23503' })),
      );
      await processor.processPurchase(job).catch(() => {});
      expect(outcomes(metrics)).toEqual(['error']);
      expect(metrics.purchaseRecorded.mock.calls).toEqual([['failed', 'user_or_product_gone']]);
    });
  });
});
