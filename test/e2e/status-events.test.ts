import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import {
  createPurchaseClient,
  openStatusStream,
  purchaseIdIn,
  useApiKey,
  type PurchaseClient,
} from '../support/purchase-client.js';
import { eventually, seedUserAndProduct } from '../support/services.js';

/*
 * `GET /payment/purchase/:id/events` on the built processes: the stream is held by one API
 * process while the purchase is accepted by another and run by a worker, so every event after
 * the first comes from the worker's announcements crossing processes (Redis pub/sub, or NOTIFY).
 */
describe.each(STORE_BACKENDS)('purchase events streams (%s backend)', (backend) => {
  let stack: ProcessStack;
  /** Holds the streams. */
  let streamingApi: string;
  /** Accepts the purchases. */
  let accepting: PurchaseClient;
  /** Holds at most one stream, for one second. */
  let boundedApi: string;
  let ids: { userId: number; productId: number };

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    const [streaming, acceptingApi, bounded] = await Promise.all([
      stack.startApi(),
      stack.startApi(),
      stack.startApi({ STATUS_STREAMS_MAX: '1', STATUS_STREAM_MAX_SECONDS: '1' }),
    ]);
    streamingApi = streaming.url;
    accepting = createPurchaseClient(acceptingApi.url);
    boundedApi = bounded.url;
    const { userId, productId } = await seedUserAndProduct(stack.db);
    ids = { userId, productId };
  });
  afterAll(() => stack?.close());

  const accept = async () => {
    const accepted = await accepting.purchase(ids, { idempotencyKey: randomUUID() });
    expect(accepted.status).toBe(202);
    return purchaseIdIn(accepted.headers.get('location'));
  };

  // First, while no worker runs: the purchases stay queued.
  it('ends a stream after STATUS_STREAM_MAX_SECONDS, and refuses streams past STATUS_STREAMS_MAX with 503', async () => {
    const purchaseId = await accept();
    const stream = await openStatusStream(boundedApi, purchaseId, 10_000);
    expect(stream.status).toBe(200);
    await eventually(async () => (stream.events.length > 0 ? true : undefined), { what: 'the first event' });

    const refused = await openStatusStream(boundedApi, purchaseId);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ code: 'TOO_MANY_STREAMS' });
    expect(refused.headers.get('retry-after')).toBe('5');

    const endedAfterMs = await stream.ended;
    expect(endedAfterMs).toBeGreaterThanOrEqual(900);
    expect(endedAfterMs).toBeLessThan(5_000);
    expect(stream.events.map((event) => event.status)).toEqual(['queued']);
    // The place is free again.
    const again = await openStatusStream(boundedApi, purchaseId, 10_000);
    expect(again.status).toBe(200);
    again.close();
  });

  it('streams queued, processing, succeeded from one API while another accepted it and a worker ran it, then ends', async () => {
    const purchaseId = await accept();
    const stream = await openStatusStream(streamingApi, purchaseId);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('cache-control')).toBe('no-cache');
    // The headers every answer carries, set by hooks before the stream took the answer over.
    expect(stream.headers.get('x-request-id')).toBeTruthy();
    expect(stream.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(stream.headers.get('ratelimit-limit')).toBeTruthy();
    await eventually(async () => (stream.events.length > 0 ? true : undefined), { what: 'the first event' });

    await stack.startWorker({ PAYMENT_DELAY_MS: '500' });
    await stream.ended;

    expect(stream.events.map((event) => event.status)).toEqual(['queued', 'processing', 'succeeded']);
    const single = await accepting.getPurchase(purchaseId);
    expect(stream.events[0]).toMatchObject({ ...single.body, status: 'queued', updatedAt: single.body!.createdAt });
    expect(stream.events.at(-1)).toEqual(single.body);
  });

  it('answers a finished purchase with its one event and ends at once', async () => {
    const purchaseId = await accept();
    await accepting.purchaseReaches(purchaseId, ['succeeded']);
    const stream = await openStatusStream(streamingApi, purchaseId);
    expect(await stream.ended).toBeLessThan(2_000);
    expect(stream.events.map((event) => event.status)).toEqual(['succeeded']);
  });

  it("answers 404 for an unknown purchase and another account's, and 400 for a malformed id", async () => {
    const other = await createAccountsRepository({ db: stack.db }).createAccount('events-other');
    const theirs = await seedUserAndProduct(stack.db, { accountId: other.accountId });
    // A client of the other account, on an API of the stack's.
    const otherApi = (await stack.startApi()).url;
    useApiKey(otherApi, other.apiKey);
    const accepted = await createPurchaseClient(otherApi).purchase({
      userId: theirs.userId,
      productId: theirs.productId,
    });
    const theirPurchase = purchaseIdIn(accepted.headers.get('location'));

    for (const purchaseId of [randomUUID(), theirPurchase]) {
      const stream = await openStatusStream(streamingApi, purchaseId);
      expect(stream.status).toBe(404);
      expect(stream.body).toMatchObject({ code: 'PURCHASE_NOT_FOUND' });
    }
    const malformed = await openStatusStream(streamingApi, 'not-a-uuid');
    expect(malformed.status).toBe(400);
    // Their own key streams it.
    const own = await openStatusStream(otherApi, theirPurchase);
    expect(own.status).toBe(200);
    await own.ended;
    expect(own.events.at(-1)?.status).toBe('succeeded');
  });
});
