import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import type { PurchaseStatus } from '../../src/shared/purchase/purchase.js';
import { createPaymentsRepository } from '../../src/shared/purchase/payments-repository.js';
import { createPurchasesRepository } from '../../src/shared/purchase/purchases-repository.js';
import { STORE_BACKENDS } from '../support/backends.js';
import type { PurchaseView } from '../support/purchase-client.js';
import { seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

interface Page {
  data: PurchaseView[];
  has_more: boolean;
  next_starting_after: string | null;
}

/**
 * `GET /payment/purchase` on each store backend: an account's purchases, newest first, a page at
 * a time, each exactly as the single read gives it, `processing` (which the Redis backend keeps
 * in Redis) included.
 */
describe.each(STORE_BACKENDS)('listing purchases (%s backend)', (backend) => {
  let stack: TestStack;
  /** The account's purchases by what the test made of them; `newestFirst` in the order listed. */
  const made: Record<string, string> = {};
  let newestFirst: string[] = [];
  let userIds: number[] = [];
  let otherAccount: { apiKey: string; purchaseId: string; userId: number };

  const get = (url: string, authorization?: string) =>
    stack.app.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} });
  const list = async (query = '', authorization?: string): Promise<Page> => {
    const answer = await get(`/payment/purchase${query}`, authorization);
    expect(answer.statusCode, answer.body).toBe(200);
    return answer.json();
  };

  async function purchase(userId: number, productId: number, authorization?: string): Promise<string> {
    const answer = await stack.app.inject({
      method: 'POST',
      url: '/payment/purchase',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': randomUUID(),
        ...(authorization ? { authorization } : {}),
      },
      payload: { userId, productId },
    });
    expect(answer.statusCode, answer.body).toBe(202);
    // Accepted a few ms apart, so "newest first" is the reverse of this order.
    await sleep(3);
    return (answer.json() as { purchaseId: string }).purchaseId;
  }

  beforeAll(async () => {
    stack = await createTestStack({ backend });
    const { db } = stack.database;
    const first = await seedUserAndProduct(db);
    const second = await seedUserAndProduct(db);
    userIds = [first.userId, second.userId];
    const purchases = createPurchasesRepository({ db });
    const payments = createPaymentsRepository({ db });
    const { states } = stack.root.stores;
    const jobOf = async (purchaseId: string) => {
      const accepted = (await purchases.findAccepted(purchaseId))!;
      const { purchase, idempotencyKey } = accepted;
      return { ...purchase, idempotencyKey, acceptedAt: purchase.createdAt.toISOString() };
    };
    const finish = async (purchaseId: string, status: 'succeeded' | 'failed', inPostgres: boolean) => {
      const job = await jobOf(purchaseId);
      const failureReason = status === 'failed' ? 'card_declined' : null;
      if (inPostgres) await payments.recordPayment(job, { status, failureReason });
      const finished = { ...job, status, failureReason, updatedAt: new Date() };
      await states.markFinished(finished, { idempotencyKey: job.idempotencyKey, inPostgres });
    };

    const order = ['queued', 'processing', 'succeeded', 'failed', 'unrecorded', 'abandoned', 'abandonedButPaid'];
    for (const [n, name] of order.entries()) {
      const user = n % 2 === 0 ? first : second;
      made[name] = await purchase(user.userId, first.productId);
    }
    const { idempotencyKey } = await jobOf(made.processing!);
    await states.markProcessing({ purchaseId: made.processing!, idempotencyKey });
    await finish(made.succeeded!, 'succeeded', true);
    await finish(made.failed!, 'failed', true);
    // A decline `payments` could not take: the state store holds it (Redis, or the purchases row).
    await finish(made.unrecorded!, 'failed', false);
    // Answered 503: never a purchase. The other one's job did run (an enqueue whose reply was
    // lost, and the retry was answered 204 pointing at it): its payment shows it is one.
    await purchases.markAbandoned(made.abandoned!);
    await purchases.markAbandoned(made.abandonedButPaid!);
    await finish(made.abandonedButPaid!, 'succeeded', true);
    newestFirst = order
      .filter((name) => name !== 'abandoned')
      .reverse()
      .map((name) => made[name]!);

    // Another account, with a purchase of its own.
    const other = await createAccountsRepository({ db }).createAccount('listing-other');
    const theirs = await seedUserAndProduct(db, { accountId: other.accountId });
    const authorization = `Bearer ${other.apiKey}`;
    otherAccount = {
      apiKey: authorization,
      purchaseId: await purchase(theirs.userId, theirs.productId, authorization),
      userId: theirs.userId,
    };
  });
  afterAll(() => stack?.close());

  it('lists every purchase of the account, newest first, each exactly as the single read gives it', async () => {
    const page = await list();
    expect(page.has_more).toBe(false);
    expect(page.next_starting_after).toBeNull();
    expect(page.data.map((purchase) => purchase.purchaseId)).toEqual(newestFirst);
    for (const listed of page.data) {
      const single = await get(`/payment/purchase/${listed.purchaseId}`);
      expect(listed).toEqual(single.json());
    }
    const statusOf = (name: string) => page.data.find((purchase) => purchase.purchaseId === made[name])?.status;
    expect(['queued', 'processing', 'succeeded', 'failed', 'unrecorded', 'abandonedButPaid'].map(statusOf)).toEqual([
      'queued',
      'processing',
      'succeeded',
      'failed',
      'failed',
      'succeeded',
    ]);
  });

  it('pages through them with limit and next_starting_after, has_more true until the last page', async () => {
    const seen: string[] = [];
    let cursor = '';
    for (let pages = 1; ; pages++) {
      const page = await list(`?limit=2${cursor}`);
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((purchase) => purchase.purchaseId));
      if (!page.has_more) {
        expect(page.next_starting_after).toBeNull();
        expect(pages).toBe(Math.ceil(newestFirst.length / 2));
        break;
      }
      // The cursor is the page's last purchase, as Stripe's clients take it.
      expect(page.next_starting_after).toBe(page.data.at(-1)!.purchaseId);
      cursor = `&starting_after=${page.next_starting_after}`;
    }
    expect(seen).toEqual(newestFirst);
  });

  it.each([
    ['queued', ['queued']],
    ['processing', ['processing']],
    ['succeeded', ['abandonedButPaid', 'succeeded']],
    ['failed', ['unrecorded', 'failed']],
  ] as Array<[PurchaseStatus, string[]]>)(
    'filters on status=%s, as the single read resolves it',
    async (status, names) => {
      const page = await list(`?status=${status}`);
      expect(page.data.map((purchase) => purchase.purchaseId)).toEqual(names.map((name) => made[name]));
      expect(page.data.every((purchase) => purchase.status === status)).toBe(true);
      // One of them a page, and the cursor carries the filter on.
      const firstPage = await list(`?status=${status}&limit=1`);
      expect(firstPage).toMatchObject({ has_more: names.length > 1 });
      expect(firstPage.data.map((purchase) => purchase.purchaseId)).toEqual([made[names[0]!]]);
    },
  );

  it("filters on a user, and answers nothing for another account's user", async () => {
    const page = await list(`?userId=${userIds[1]}`);
    expect(page.data.map((purchase) => purchase.purchaseId)).toEqual([made.failed, made.processing]);
    expect(page.data.map((purchase) => purchase.userId)).toEqual([userIds[1], userIds[1]]);
    expect((await list(`?userId=${otherAccount.userId}`)).data).toEqual([]);
    const both = await list(`?userId=${userIds[0]}&status=queued`);
    expect(both.data.map((purchase) => purchase.purchaseId)).toEqual([made.queued]);
  });

  it("keeps each account to its own purchases, and refuses another account's purchase as a cursor", async () => {
    const theirs = await list('', otherAccount.apiKey);
    expect(theirs.data.map((purchase) => purchase.purchaseId)).toEqual([otherAccount.purchaseId]);
    expect((await list()).data.map((purchase) => purchase.purchaseId)).not.toContain(otherAccount.purchaseId);

    const crossed = await get(`/payment/purchase?starting_after=${otherAccount.purchaseId}`);
    expect(crossed.statusCode).toBe(400);
    expect(crossed.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    const unknown = await get(`/payment/purchase?starting_after=${randomUUID()}`);
    expect(unknown.statusCode).toBe(400);
  });

  it.each(['limit=0', 'limit=101', 'limit=two', 'status=pending', 'starting_after=nope', 'userId=-1', 'page=2'])(
    'answers 400 VALIDATION_FAILED to ?%s',
    async (query) => {
      const answer = await get(`/payment/purchase?${query}`);
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    },
  );
});
