import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { Claim, ClaimResult } from '../../src/shared/purchase/idempotency.js';
import type { Purchase, PurchaseJob } from '../../src/shared/purchase/purchase.js';
import type { PurchaseRef } from '../../src/shared/purchase/purchase-states.js';
import { createReconciler, type JobState } from '../../src/worker/reconciler.js';

const job = (n: number): PurchaseJob => ({
  purchaseId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  userId: n,
  productId: 1,
  amount: 100,
  idempotencyKey: `user:${n}:key:k`,
  acceptedAt: '2026-12-01T00:00:00.000Z',
});

/** The reconciler's logic with fakes for its stores (test/e2e/redis-data-loss.test.ts runs it for real). */
function setup(options: {
  states: Record<string, JobState>;
  holders?: Record<string, string>;
  charged?: string[];
  abandoned?: Record<string, true>;
}) {
  const unpaid = Object.keys(options.states).map((id) => ({
    job: job(Number(id)),
    abandoned: id in (options.abandoned ?? {}),
  }));
  const claims = new Map<string, Claim>(
    Object.entries(options.holders ?? {}).map(([key, purchaseId]) => [key, { purchaseId, fingerprint: 'x' }]),
  );
  const deps = {
    purchases: { findUnpaid: vi.fn(async () => unpaid), dropAbandoned: vi.fn(async () => {}) },
    payments: { recordPayment: vi.fn(async () => ({}) as never) },
    states: { getPurchaseState: vi.fn(async (_ref: PurchaseRef): Promise<Purchase | null> => null) },
    idempotency: {
      claimIdempotencyKey: vi.fn(async (key: string, claim: Claim): Promise<ClaimResult> => {
        const existing = claims.get(key);
        if (existing) return { claimed: false, existing, confirmed: true };
        claims.set(key, claim);
        return { claimed: true };
      }),
      confirmClaim: vi.fn(async () => true),
    },
    producer: { enqueuePurchase: vi.fn(async (j: PurchaseJob) => ({ queuedPurchaseId: j.purchaseId })) },
    jobs: {
      jobState: vi.fn(async (purchaseId: string) => options.states[String(Number(purchaseId.slice(-12)))]!),
      discardFailed: vi.fn(async () => {}),
    },
    isCharged: vi.fn(async (purchaseId: string) => (options.charged ?? []).includes(purchaseId)),
    logger: pino({ level: 'silent' }),
    metrics: { reconciled: vi.fn() },
  };
  return { reconciler: createReconciler(deps), deps };
}

describe('createReconciler', () => {
  it('leaves live jobs alone and enqueues again those whose job is missing or failed', async () => {
    const { reconciler, deps } = setup({ states: { 1: 'alive', 2: 'missing', 3: 'failed', 4: 'unknown' } });
    const report = await reconciler.reconcile({ acceptedBefore: new Date() });
    expect(report).toEqual({
      scanned: 4,
      alive: 1,
      requeued: [job(2).purchaseId, job(3).purchaseId, job(4).purchaseId],
      recorded: [],
      superseded: [],
      dropped: [],
      errors: 0,
    });
    expect(deps.jobs.discardFailed).toHaveBeenCalledExactlyOnceWith(job(3).purchaseId);
    expect(deps.producer.enqueuePurchase.mock.calls.map(([j]) => j)).toEqual([job(2), job(3), job(4)]);
    // Each took its key back before it was enqueued.
    expect(deps.idempotency.confirmClaim).toHaveBeenCalledTimes(3);
  });

  it('records a purchase whose key another purchase holds as superseded, unless it was charged', async () => {
    const { reconciler, deps } = setup({
      states: { 5: 'missing', 6: 'missing', 7: 'missing' },
      holders: {
        [job(5).idempotencyKey]: 'other-a',
        [job(6).idempotencyKey]: 'other-b',
        [job(7).idempotencyKey]: job(7).purchaseId,
      },
      charged: [job(6).purchaseId],
    });
    const report = await reconciler.reconcile({ acceptedBefore: new Date() });
    expect(report.superseded).toEqual([job(5).purchaseId]);
    expect(deps.payments.recordPayment).toHaveBeenCalledExactlyOnceWith(job(5), {
      status: 'failed',
      failureReason: 'superseded_by_retry',
    });
    // Charged already: completed, never failed. Holding its own key: completed.
    expect(report.requeued).toEqual([job(6).purchaseId, job(7).purchaseId]);
  });

  it("hands each run's report to its metrics, and null for a run that failed", async () => {
    const { reconciler, deps } = setup({ states: { 15: 'missing' } });
    const report = await reconciler.reconcile({ acceptedBefore: new Date() });
    deps.purchases.findUnpaid.mockRejectedValueOnce(new Error('postgres down'));
    await expect(reconciler.reconcile({ acceptedBefore: new Date() })).rejects.toThrow('postgres down');
    expect(deps.metrics.reconciled.mock.calls).toEqual([[report], [null]]);
  });

  it('counts a purchase it could not handle and goes on with the rest', async () => {
    const { reconciler, deps } = setup({ states: { 8: 'missing', 9: 'missing' } });
    deps.producer.enqueuePurchase.mockRejectedValueOnce(new Error('queue down'));
    const report = await reconciler.reconcile({ acceptedBefore: new Date() });
    expect(report).toMatchObject({ errors: 1, requeued: [job(9).purchaseId] });
  });

  it('drops an abandoned acceptance whose job never ran, and completes one whose job charged', async () => {
    const { reconciler, deps } = setup({
      states: { 10: 'missing', 11: 'missing', 12: 'alive' },
      abandoned: { 10: true, 11: true, 12: true },
      charged: [job(11).purchaseId],
    });
    const report = await reconciler.reconcile({ acceptedBefore: new Date() });
    expect(report).toMatchObject({ dropped: [job(10).purchaseId], requeued: [job(11).purchaseId], alive: 1 });
    expect(deps.purchases.dropAbandoned).toHaveBeenCalledExactlyOnceWith(job(10).purchaseId);
    expect(deps.payments.recordPayment).not.toHaveBeenCalled();
  });

  it('writes to Postgres an outcome only Redis kept, instead of running the purchase again', async () => {
    const { reconciler, deps } = setup({ states: { 13: 'failed' } });
    deps.states.getPurchaseState.mockResolvedValueOnce({
      ...job(13),
      status: 'failed',
      failureReason: 'retries_exhausted',
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    const report = await reconciler.reconcile({ acceptedBefore: new Date() });
    expect(report).toMatchObject({ recorded: [job(13).purchaseId], requeued: [] });
    expect(deps.payments.recordPayment).toHaveBeenCalledExactlyOnceWith(job(13), {
      status: 'failed',
      failureReason: 'retries_exhausted',
    });
    expect(deps.producer.enqueuePurchase).not.toHaveBeenCalled();
  });

  it('starts each run where every purchase before was done, so it never rescans all of history', async () => {
    const { reconciler, deps } = setup({ states: { 14: 'alive' } });
    const firstCutoff = new Date('2026-12-02T00:00:00.000Z');
    await reconciler.reconcile({ acceptedBefore: firstCutoff });
    const [first] = deps.purchases.findUnpaid.mock.calls[0] as unknown as [{ acceptedFrom: Date }];
    // The first run looks back the default 7 days.
    expect(Date.now() - first.acceptedFrom.getTime()).toBeGreaterThanOrEqual(7 * 24 * 3600 * 1000 - 1000);

    // Purchase 14 is still queued: the next run starts at its acceptance.
    await reconciler.reconcile({ acceptedBefore: new Date('2026-12-02T00:01:00.000Z') });
    const [second] = deps.purchases.findUnpaid.mock.calls[1] as unknown as [{ acceptedFrom: Date }];
    expect(second.acceptedFrom.toISOString()).toBe(job(14).acceptedAt);

    // Once nothing is left undone, the next run starts at the previous run's cutoff.
    deps.purchases.findUnpaid.mockResolvedValueOnce([]);
    const thirdCutoff = new Date('2026-12-02T00:02:00.000Z');
    await reconciler.reconcile({ acceptedBefore: thirdCutoff });
    await reconciler.reconcile({ acceptedBefore: new Date('2026-12-02T00:03:00.000Z') });
    const [fourth] = deps.purchases.findUnpaid.mock.calls[3] as unknown as [{ acceptedFrom: Date }];
    expect(fourth.acceptedFrom).toEqual(thirdCutoff);
  });
});
