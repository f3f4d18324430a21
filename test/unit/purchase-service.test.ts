import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import {
  createPurchaseService,
  LIST_SCAN_CHUNK,
  LIST_SCAN_MAX_ROWS,
  type PurchaseServiceDeps,
} from '../../src/api/purchase-service.js';
import { AppError } from '../../src/api/errors.js';
import type { Claim, ClaimResult } from '../../src/shared/purchase/idempotency.js';
import type { PurchaseJob } from '../../src/shared/purchase/purchase.js';
import type { AcceptedListQuery, ListedPurchase } from '../../src/shared/purchase/purchases-repository.js';

const PURCHASE_ID = '00000000-0000-4000-8000-000000000001';
const OTHER_ID = '00000000-0000-4000-8000-000000000002';

/** An in-memory claim store with the same contract as the Redis one (logic only). */
function fakeIdempotency() {
  const claims = new Map<string, Claim>();
  return {
    claims,
    claimIdempotencyKey: vi.fn(async (key: string, claim: Claim): Promise<ClaimResult> => {
      const existing = claims.get(key);
      if (existing) return { claimed: false, existing, confirmed: true };
      claims.set(key, claim);
      return { claimed: true };
    }),
    inspectClaim: vi.fn(async (key: string) => {
      const existing = claims.get(key);
      return existing ? { existing, confirmed: true } : null;
    }),
    confirmClaim: vi.fn(async () => true),
    releaseClaim: vi.fn(async (key: string, purchaseId: string) => {
      if (claims.get(key)?.purchaseId !== purchaseId) return false;
      claims.delete(key);
      return true;
    }),
    redirectClaim: vi.fn(async (key: string, _from: string, to: Claim) => {
      claims.set(key, to);
      return true;
    }),
  };
}

/** The purchases repository's part the service uses, each method a spy. */
function fakePurchases(overrides: Partial<PurchaseServiceDeps['purchases']> = {}): PurchaseServiceDeps['purchases'] {
  return {
    recordAccepted: vi.fn(async () => ({ heldEvent: false })),
    releaseAcceptedEvent: vi.fn(async () => {}),
    findAccepted: vi.fn(async () => null),
    markAbandoned: vi.fn(async () => {}),
    markQueued: vi.fn(async () => {}),
    listAccepted: vi.fn(async () => []),
    ...overrides,
  };
}

function setup(overrides: Partial<PurchaseServiceDeps> = {}) {
  const idempotency = fakeIdempotency();
  const producer = {
    enqueuePurchase: vi.fn(async (_job: PurchaseJob) => ({ queuedPurchaseId: PURCHASE_ID })),
  };
  const deps: PurchaseServiceDeps = {
    idempotency,
    states: { getPurchaseState: vi.fn(async () => null) },
    payments: { findPayment: vi.fn(async () => null) },
    purchases: fakePurchases(),
    references: { lookupPurchaseReferences: vi.fn(async () => ({ userExists: true, price: 500 })) },
    producer,
    waiter: { waitForOutcome: vi.fn(() => ({ outcome: Promise.resolve(null), cancel: vi.fn() })) },
    logger: pino({ level: 'silent' }),
    newPurchaseId: () => PURCHASE_ID,
    ...overrides,
  };
  return { service: createPurchaseService(deps), deps, idempotency, producer };
}

const ACCOUNT_ID = 7;
const request = { accountId: ACCOUNT_ID, userId: 1, productId: 2 };
/** A client's `Prefer: wait` of `seconds`, counted from now. */
const waitFor = (seconds: number) => ({ deadline: Date.now() + seconds * 1000, signal: new AbortController().signal });

const finishedPurchase = () => ({
  purchaseId: PURCHASE_ID,
  userId: 1,
  productId: 2,
  status: 'succeeded' as const,
  amount: 500,
  failureReason: null,
  createdAt: new Date(),
  updatedAt: new Date(),
});

describe('createPurchaseService.submitPurchase', () => {
  it('accepts a first submission, enqueues once and confirms the claim', async () => {
    const { service, producer, idempotency } = setup();
    await expect(service.submitPurchase(request)).resolves.toEqual({ kind: 'accepted', purchaseId: PURCHASE_ID });
    expect(producer.enqueuePurchase).toHaveBeenCalledTimes(1);
    expect(producer.enqueuePurchase.mock.calls[0]![0]).toMatchObject({
      purchaseId: PURCHASE_ID,
      userId: 1,
      productId: 2,
      amount: 500,
      idempotencyKey: 'user:1:product:2',
    });
    expect(idempotency.confirmClaim).toHaveBeenCalledWith('user:1:product:2', PURCHASE_ID);
  });

  it('answers a duplicate from the claim, without enqueueing again', async () => {
    const { service, producer, idempotency } = setup();
    await service.submitPurchase(request);
    await expect(service.submitPurchase(request)).resolves.toEqual({ kind: 'duplicate', purchaseId: PURCHASE_ID });
    expect(producer.enqueuePurchase).toHaveBeenCalledTimes(1);
    expect(idempotency.confirmClaim).toHaveBeenCalledTimes(1);
  });

  it('rejects a reused Idempotency-Key with a different body', async () => {
    const { service, producer } = setup();
    await service.submitPurchase({ ...request, idempotencyKey: 'k' });
    const reuse = service.submitPurchase({ ...request, productId: 3, idempotencyKey: 'k' });
    await expect(reuse).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', statusCode: 422 });
    expect(producer.enqueuePurchase).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['USER_NOT_FOUND', { references: { lookupPurchaseReferences: async () => ({ userExists: false, price: 500 }) } }],
    [
      'PRODUCT_NOT_FOUND',
      { references: { lookupPurchaseReferences: async () => ({ userExists: true, price: null }) } },
    ],
  ] as const)('rejects with %s before claiming anything', async (code, override) => {
    const { service, idempotency, producer } = setup(override);
    await expect(service.submitPurchase(request)).rejects.toMatchObject({ code, statusCode: 422 });
    expect(idempotency.claimIdempotencyKey).not.toHaveBeenCalled();
    expect(producer.enqueuePurchase).not.toHaveBeenCalled();
  });

  it('releases the claim and answers 503 when the enqueue fails; a retry then succeeds', async () => {
    const { service, idempotency, producer } = setup();
    producer.enqueuePurchase.mockRejectedValueOnce(new Error('redis down'));
    const failed = await service.submitPurchase(request).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(AppError);
    expect(failed).toMatchObject({ code: 'QUEUE_UNAVAILABLE', statusCode: 503, headers: { 'retry-after': '1' } });
    expect(idempotency.releaseClaim).toHaveBeenCalledWith('user:1:product:2', PURCHASE_ID);
    expect(idempotency.claims.size).toBe(0);
    await expect(service.submitPurchase(request)).resolves.toMatchObject({ kind: 'accepted' });
  });

  it('records the purchase in Postgres before enqueueing; a failed record releases the claim and enqueues nothing', async () => {
    const { service, deps, idempotency, producer } = setup();
    const order: string[] = [];
    vi.mocked(deps.purchases.recordAccepted).mockImplementation(
      async () => (order.push('record'), { heldEvent: false }),
    );
    producer.enqueuePurchase.mockImplementation(
      async (job) => (order.push('enqueue'), { queuedPurchaseId: job.purchaseId }),
    );
    await service.submitPurchase(request);
    expect(order).toEqual(['record', 'enqueue']);

    vi.mocked(deps.purchases.recordAccepted).mockRejectedValueOnce(new Error('connect ECONNREFUSED'));
    const failed = await service.submitPurchase({ ...request, idempotencyKey: 'k2' }).catch((error: unknown) => error);
    expect(failed).toMatchObject({ code: 'SERVICE_UNAVAILABLE', statusCode: 503 });
    expect(idempotency.releaseClaim).toHaveBeenCalledWith('user:1:key:k2', PURCHASE_ID);
    expect(producer.enqueuePurchase).toHaveBeenCalledTimes(1);
  });

  it('marks a purchase abandoned when its acceptance is answered 503 or folded into another', async () => {
    const { service, deps, producer } = setup();
    producer.enqueuePurchase.mockRejectedValueOnce(new Error('redis down'));
    await service.submitPurchase(request).catch(() => {});
    producer.enqueuePurchase.mockResolvedValueOnce({ queuedPurchaseId: OTHER_ID });
    await service.submitPurchase(request);
    expect(deps.purchases.markAbandoned).toHaveBeenCalledTimes(2);
    // The 204 points at the purchase the queue holds: that one is kept, whatever it was answered.
    expect(deps.purchases.markQueued).toHaveBeenCalledExactlyOnceWith(OTHER_ID);
  });

  it('releases a held purchase.accepted event once the purchase is queued, and never for one answered 503 or folded', async () => {
    const { service, deps, producer } = setup();
    vi.mocked(deps.purchases.recordAccepted).mockResolvedValue({ heldEvent: true });
    producer.enqueuePurchase.mockRejectedValueOnce(new Error('redis down'));
    await service.submitPurchase(request).catch(() => {});
    producer.enqueuePurchase.mockResolvedValueOnce({ queuedPurchaseId: OTHER_ID });
    await service.submitPurchase(request);
    expect(deps.purchases.releaseAcceptedEvent).not.toHaveBeenCalled();

    await expect(service.submitPurchase({ ...request, idempotencyKey: 'k3' })).resolves.toMatchObject({
      kind: 'accepted',
    });
    expect(deps.purchases.releaseAcceptedEvent).toHaveBeenCalledExactlyOnceWith(PURCHASE_ID);

    // No event written, nothing to release; a release that fails does not fail the purchase.
    vi.mocked(deps.purchases.recordAccepted).mockResolvedValueOnce({ heldEvent: false });
    await service.submitPurchase({ ...request, idempotencyKey: 'k4' });
    expect(deps.purchases.releaseAcceptedEvent).toHaveBeenCalledTimes(1);
    vi.mocked(deps.purchases.releaseAcceptedEvent).mockRejectedValueOnce(new Error('connect ECONNREFUSED'));
    await expect(service.submitPurchase({ ...request, idempotencyKey: 'k5' })).resolves.toMatchObject({
      kind: 'accepted',
    });
  });

  it('times each claim and enqueue by result when given timings', async () => {
    const timings = { claim: vi.fn(), enqueue: vi.fn() };
    const { service, idempotency, producer } = setup({ timings });
    await service.submitPurchase(request);
    await service.submitPurchase(request); // a duplicate: the key is held
    producer.enqueuePurchase.mockRejectedValueOnce(new Error('redis down'));
    await service.submitPurchase({ ...request, idempotencyKey: 'k3' }).catch(() => {});
    idempotency.claimIdempotencyKey.mockRejectedValueOnce(new Error('redis down'));
    await service.submitPurchase({ ...request, idempotencyKey: 'k4' }).catch(() => {});

    expect(timings.claim.mock.calls.map(([, result]) => result)).toEqual(['claimed', 'held', 'claimed', 'error']);
    expect(timings.enqueue.mock.calls.map(([, result]) => result)).toEqual(['queued', 'error']);
    for (const [seconds] of [...timings.claim.mock.calls, ...timings.enqueue.mock.calls]) {
      expect(seconds).toBeGreaterThanOrEqual(0);
      expect(seconds).toBeLessThan(5);
    }
  });

  describe('a duplicate of a pending claim (claimed, not yet recorded and enqueued)', () => {
    const pendingHolder = { existing: { purchaseId: OTHER_ID, fingerprint: '1/2' }, confirmed: false };

    it('waits for the claim to be confirmed, then answers 204 with the holder', async () => {
      const { service, idempotency } = setup();
      idempotency.claimIdempotencyKey.mockResolvedValueOnce({ claimed: false, ...pendingHolder });
      idempotency.inspectClaim
        .mockResolvedValueOnce(pendingHolder)
        .mockResolvedValueOnce({ ...pendingHolder, confirmed: true });
      await expect(service.submitPurchase(request)).resolves.toEqual({ kind: 'duplicate', purchaseId: OTHER_ID });
      expect(idempotency.inspectClaim).toHaveBeenCalledTimes(2);
    });

    it('claims the key itself once the pending claim is given up', async () => {
      const { service, idempotency } = setup();
      idempotency.claimIdempotencyKey.mockResolvedValueOnce({ claimed: false, ...pendingHolder });
      idempotency.inspectClaim.mockResolvedValueOnce(null);
      await expect(service.submitPurchase(request)).resolves.toEqual({ kind: 'accepted', purchaseId: PURCHASE_ID });
    });

    it('answers 503 IDEMPOTENCY_KEY_PENDING with Retry-After when it stays pending past the bound', async () => {
      const { service, idempotency } = setup({ pendingClaimWaitMs: 100 });
      idempotency.claimIdempotencyKey.mockResolvedValueOnce({ claimed: false, ...pendingHolder });
      idempotency.inspectClaim.mockResolvedValue(pendingHolder);
      await expect(service.submitPurchase(request)).rejects.toMatchObject({
        code: 'IDEMPOTENCY_KEY_PENDING',
        statusCode: 503,
        headers: { 'retry-after': '1' },
      });
    });
  });

  it('turns a Redis failure into 503, never a 500', async () => {
    const { service, idempotency } = setup();
    idempotency.claimIdempotencyKey.mockRejectedValueOnce(new Error('Stream is not writeable'));
    await expect(service.submitPurchase(request)).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      statusCode: 503,
    });
  });

  it('treats a job the queue collapsed into a pending one as a duplicate of that purchase', async () => {
    const { service, idempotency, producer } = setup();
    producer.enqueuePurchase.mockResolvedValueOnce({ queuedPurchaseId: OTHER_ID });
    await expect(service.submitPurchase(request)).resolves.toEqual({ kind: 'duplicate', purchaseId: OTHER_ID });
    expect(idempotency.claims.get('user:1:product:2')?.purchaseId).toBe(OTHER_ID);
    expect(idempotency.confirmClaim).not.toHaveBeenCalled();
  });

  it('returns the finished purchase when it completes within the wait', async () => {
    const finished = finishedPurchase();
    const { service, deps } = setup({
      waiter: { waitForOutcome: vi.fn(() => ({ outcome: Promise.resolve(finished), cancel: vi.fn() })) },
      payments: { findPayment: vi.fn(async () => finished) },
    });
    const wait = waitFor(5);
    await expect(service.submitPurchase({ ...request, wait })).resolves.toEqual({
      kind: 'finished',
      purchase: finished,
    });
    // The client's deadline and signal, untouched, and a read of this purchase's status.
    expect(deps.waiter.waitForOutcome).toHaveBeenCalledWith(PURCHASE_ID, wait, expect.any(Function));
    const read = vi.mocked(deps.waiter.waitForOutcome).mock.calls[0]![2];
    await expect(read()).resolves.toEqual(finished);
    expect(deps.payments.findPayment).toHaveBeenCalledWith(PURCHASE_ID);
  });

  it('registers the wait before enqueueing, so a fast worker cannot finish unseen', async () => {
    const order: string[] = [];
    const { service, producer } = setup({
      waiter: {
        waitForOutcome: vi.fn(() => {
          order.push('wait');
          return { outcome: Promise.resolve(null), cancel: vi.fn() };
        }),
      },
    });
    producer.enqueuePurchase.mockImplementationOnce(async () => {
      order.push('enqueue');
      return { queuedPurchaseId: PURCHASE_ID };
    });
    await service.submitPurchase({ ...request, wait: waitFor(5) });
    expect(order).toEqual(['wait', 'enqueue']);
  });

  it('does not wait without Prefer: wait', async () => {
    const { service, deps } = setup();
    await expect(service.submitPurchase(request)).resolves.toEqual({ kind: 'accepted', purchaseId: PURCHASE_ID });
    expect(deps.waiter.waitForOutcome).not.toHaveBeenCalled();
  });

  it('answers 202 at once when the waiter refuses the wait (every place taken)', async () => {
    const { service, producer } = setup({ waiter: { waitForOutcome: vi.fn(() => null) } });
    const started = Date.now();
    await expect(service.submitPurchase({ ...request, wait: waitFor(20) })).resolves.toEqual({
      kind: 'accepted',
      purchaseId: PURCHASE_ID,
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    // Still accepted and queued: only the wait was refused.
    expect(producer.enqueuePurchase).toHaveBeenCalledTimes(1);
  });

  it('answers 202 when the wait ends without an outcome (deadline, departure or shutdown)', async () => {
    const { service } = setup({
      waiter: { waitForOutcome: vi.fn(() => ({ outcome: Promise.resolve(null), cancel: vi.fn() })) },
    });
    const started = Date.now();
    await expect(service.submitPurchase({ ...request, wait: waitFor(20) })).resolves.toEqual({
      kind: 'accepted',
      purchaseId: PURCHASE_ID,
    });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('cancels the wait when the enqueue fails or the queue folds the job into another', async () => {
    const cancel = vi.fn();
    const { service, producer } = setup({
      waiter: { waitForOutcome: vi.fn(() => ({ outcome: new Promise<null>(() => {}), cancel })) },
    });
    producer.enqueuePurchase.mockRejectedValueOnce(new Error('redis down'));
    await expect(service.submitPurchase({ ...request, wait: waitFor(5) })).rejects.toMatchObject({
      code: 'QUEUE_UNAVAILABLE',
    });
    expect(cancel).toHaveBeenCalledTimes(1);

    producer.enqueuePurchase.mockResolvedValueOnce({ queuedPurchaseId: OTHER_ID });
    await expect(service.submitPurchase({ ...request, wait: waitFor(5) })).resolves.toEqual({
      kind: 'duplicate',
      purchaseId: OTHER_ID,
    });
    expect(cancel).toHaveBeenCalledTimes(2);
  });
});

describe('createPurchaseService.getPurchase', () => {
  it('finds a purchase that finished between its Postgres and its Redis read', async () => {
    const finished = finishedPurchase();
    // Postgres does not have it yet; meanwhile the worker writes it and drops the Redis record.
    let written = false;
    const getPurchaseState = vi.fn(async () => {
      written = true;
      return null;
    });
    const { service } = setup({
      payments: { findPayment: vi.fn(async () => (written ? finished : null)) },
      states: { getPurchaseState },
      purchases: fakePurchases({
        findAccepted: vi.fn(async () => ({
          purchase: { ...finished, status: 'queued' as const },
          idempotencyKey: 'user:1:key:k',
          accountId: ACCOUNT_ID,
        })),
      }),
    });
    await expect(service.getPurchase(PURCHASE_ID, ACCOUNT_ID)).resolves.toEqual(finished);
    // The state store finds a purchase's records by the key it was accepted under.
    expect(getPurchaseState).toHaveBeenCalledWith({ purchaseId: PURCHASE_ID, idempotencyKey: 'user:1:key:k' });
  });

  it('answers from Postgres alone (queued) when the state store knows nothing', async () => {
    const queued = { ...finishedPurchase(), status: 'queued' as const };
    const { service } = setup({
      purchases: fakePurchases({
        findAccepted: vi.fn(async () => ({ purchase: queued, idempotencyKey: 'user:1:key:k', accountId: ACCOUNT_ID })),
      }),
    });
    await expect(service.getPurchase(PURCHASE_ID, ACCOUNT_ID)).resolves.toEqual(queued);
  });

  it('answers null for a purchase neither store knows', async () => {
    const { service } = setup();
    await expect(service.getPurchase(PURCHASE_ID, ACCOUNT_ID)).resolves.toBeNull();
  });
});

describe('createPurchaseService.listPurchases', () => {
  /** `count` unpaid purchases of the account, newest first, whose in-flight status `statusOf` gives. */
  function listing(count: number, statusOf: (n: number) => 'queued' | 'processing') {
    const rows: ListedPurchase[] = Array.from({ length: count }, (_, n) => ({
      accepted: {
        purchase: { ...finishedPurchase(), purchaseId: listedId(n), status: 'queued' as const },
        idempotencyKey: `user:1:key:${n}`,
        accountId: ACCOUNT_ID,
      },
      payment: null,
    }));
    // What Postgres would give: rows after the cursor, at most `limit` (every row is unpaid here).
    const listAccepted = vi.fn(async (query: AcceptedListQuery) => {
      const from = query.after
        ? rows.findIndex((row) => row.accepted.purchase.purchaseId === query.after!.purchaseId) + 1
        : 0;
      return rows.slice(from, from + query.limit);
    });
    const { service } = setup({
      states: {
        getPurchaseState: vi.fn(async ({ purchaseId }: { purchaseId: string }) => ({
          ...finishedPurchase(),
          purchaseId,
          status: statusOf(Number(purchaseId.slice(-6))),
        })),
      },
      purchases: fakePurchases({
        findAccepted: vi.fn(
          async (purchaseId: string) =>
            rows.find((row) => row.accepted.purchase.purchaseId === purchaseId)?.accepted ?? null,
        ),
        listAccepted,
      }),
    });
    return { service, listAccepted };
  }
  const listedId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

  it('filters on the status a status read gives, reading candidates a chunk at a time until the page is full', async () => {
    // Every tenth is processing: a page of 5 needs 51 rows, read as one chunk of LIST_SCAN_CHUNK.
    const { service, listAccepted } = listing(300, (n) => (n % 10 === 0 ? 'processing' : 'queued'));
    const page = await service.listPurchases({ accountId: ACCOUNT_ID, status: 'processing', limit: 5 });
    expect(page.purchases.map((purchase) => purchase.purchaseId)).toEqual([0, 10, 20, 30, 40].map(listedId));
    expect(page).toMatchObject({ hasMore: true, nextStartingAfter: listedId(40) });
    expect(listAccepted).toHaveBeenCalledTimes(1);
    expect(listAccepted.mock.calls[0]![0]).toMatchObject({ paymentStatuses: [null], limit: LIST_SCAN_CHUNK });

    const next = await service.listPurchases({
      accountId: ACCOUNT_ID,
      status: 'processing',
      limit: 100,
      startingAfter: page.nextStartingAfter!,
    });
    expect(next.purchases.map((purchase) => purchase.purchaseId)).toEqual(
      Array.from({ length: 25 }, (_, k) => listedId(50 + 10 * k)),
    );
    expect(next).toMatchObject({ hasMore: false, nextStartingAfter: null });
  });

  it('stops after LIST_SCAN_MAX_ROWS rows, and says where the next page starts even when it found nothing', async () => {
    const { service, listAccepted } = listing(LIST_SCAN_MAX_ROWS + 500, () => 'queued');
    const page = await service.listPurchases({ accountId: ACCOUNT_ID, status: 'processing', limit: 20 });
    expect(page).toEqual({ purchases: [], hasMore: true, nextStartingAfter: listedId(LIST_SCAN_MAX_ROWS - 1) });
    expect(listAccepted).toHaveBeenCalledTimes(LIST_SCAN_MAX_ROWS / LIST_SCAN_CHUNK);

    const rest = await service.listPurchases({
      accountId: ACCOUNT_ID,
      status: 'processing',
      limit: 20,
      startingAfter: page.nextStartingAfter!,
    });
    expect(rest).toEqual({ purchases: [], hasMore: false, nextStartingAfter: null });
  });

  it('reads one row more than a page without a filter, to know whether more follow', async () => {
    const { service, listAccepted } = listing(3, () => 'queued');
    await expect(service.listPurchases({ accountId: ACCOUNT_ID, limit: 2 })).resolves.toMatchObject({
      hasMore: true,
      nextStartingAfter: listedId(1),
    });
    expect(listAccepted.mock.calls[0]![0]).toMatchObject({ limit: 3, paymentStatuses: undefined });
    await expect(service.listPurchases({ accountId: ACCOUNT_ID, limit: 3 })).resolves.toMatchObject({
      hasMore: false,
      nextStartingAfter: null,
    });
  });

  it("refuses a cursor that is not one of the account's purchases", async () => {
    const { service } = listing(3, () => 'queued');
    await expect(
      service.listPurchases({ accountId: ACCOUNT_ID + 1, limit: 2, startingAfter: listedId(0) }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', statusCode: 400 });
    await expect(
      service.listPurchases({ accountId: ACCOUNT_ID, limit: 2, startingAfter: listedId(99) }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', statusCode: 400 });
  });
});
