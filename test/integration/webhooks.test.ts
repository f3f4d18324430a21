import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import { createPaymentsRepository, ReferenceGoneError } from '../../src/shared/purchase/payments-repository.js';
import { createPurchasesRepository } from '../../src/shared/purchase/purchases-repository.js';
import { createWebhookDeliveriesRepository } from '../../src/shared/webhooks/deliveries-repository.js';
import { createWebhookDispatcher } from '../../src/worker/webhooks/dispatcher.js';
import { sendWebhook } from '../../src/worker/webhooks/send.js';
import { seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

/** A receiver of this file's own on 127.0.0.1, answering `status`, recording what it gets. */
async function startReceiver() {
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  let status = 204;
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.statusCode = status;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    answer: (code: number) => (status = code),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Webhook endpoints, the outbox and the dispatcher against the real Postgres (in-process API and dispatcher). */
describe('webhooks', () => {
  let stack: TestStack;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    stack = await createTestStack({ env: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', RATE_LIMIT_MAX: '0' } });
  });
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  });

  const send = (method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) =>
    stack.app.inject({
      method,
      url,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  const register = async (body: { url: string; events?: string[] }, headers: Record<string, string> = {}) =>
    send('POST', '/webhook-endpoints', body, headers);

  /** An accepted purchase of the test account, as the API records it. */
  async function accepted(accountId = stack.database.account.id) {
    const { userId, productId } = await seedUserAndProduct(stack.database.db, { accountId, price: 400 });
    const job = {
      purchaseId: randomUUID(),
      accountId,
      userId,
      productId,
      amount: 400,
      idempotencyKey: `user:${userId}:key:${randomUUID()}`,
      acceptedAt: new Date().toISOString(),
    };
    await createPurchasesRepository({ db: stack.database.db }).recordAccepted(job);
    return job;
  }
  const eventsOf = (purchaseId: string) =>
    stack.database.db('webhook_events').where({ purchase_id: purchaseId }).orderBy('type');
  const deliveriesOf = (eventId: string) => stack.database.db('webhook_deliveries').where({ event_id: eventId });

  /** A dispatcher sending to 127.0.0.1, retrying at once, for an hour (WEBHOOK_RETRY_HOURS=1). */
  const RETRY_HOURS = 1;
  const dispatcher = () =>
    createWebhookDispatcher({
      deliveries: createWebhookDeliveriesRepository({ db: stack.database.db }),
      send: (url, headers, body) => sendWebhook(url, headers, body, { timeoutMs: 2_000, allowedHosts: ['127.0.0.1'] }),
      logger: pino({ level: 'silent' }),
      concurrency: 10,
      timeoutMs: 2_000,
      leaseMarginMs: 30_000,
      retryBaseMs: 1,
      retryHours: RETRY_HOURS,
    });

  it('registers an endpoint, shows its secret once, lists it without, and removes it', async () => {
    const created = await register({ url: receiver.url });
    expect(created.statusCode).toBe(201);
    const endpoint = created.json<{ id: string; secret: string; events: string[]; url: string }>();
    expect(endpoint).toMatchObject({ url: receiver.url, events: ['purchase.succeeded', 'purchase.failed'] });
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const listed = (await send('GET', '/webhook-endpoints')).json<Array<Record<string, unknown>>>();
    expect(listed).toContainEqual({
      id: endpoint.id,
      url: receiver.url,
      events: endpoint.events,
      createdAt: expect.any(String),
    });
    expect(JSON.stringify(listed)).not.toContain('whsec_');

    expect((await send('DELETE', `/webhook-endpoints/${endpoint.id}`)).statusCode).toBe(204);
    expect((await send('GET', '/webhook-endpoints')).json()).not.toContainEqual(
      expect.objectContaining({ id: endpoint.id }),
    );
    expect((await send('DELETE', `/webhook-endpoints/${endpoint.id}`)).json()).toMatchObject({
      code: 'WEBHOOK_ENDPOINT_NOT_FOUND',
    });
  });

  it('refuses URLs that are not public or allowed, and events it does not know', async () => {
    for (const url of ['http://127.0.0.2:9/h', 'http://[::1]:9/h', 'http://localhost:9/h', 'ftp://example.com/h']) {
      const refused = await register({ url });
      expect(refused.statusCode, url).toBe(422);
      expect(refused.json()).toMatchObject({ code: 'WEBHOOK_URL_NOT_ALLOWED' });
    }
    expect((await register({ url: receiver.url, events: ['purchase.refunded'] })).statusCode).toBe(400);
    expect((await register({ url: receiver.url, events: [] })).statusCode).toBe(400);
    expect((await register({ url: receiver.url, events: ['purchase.failed', 'purchase.failed'] })).statusCode).toBe(
      400,
    );
  });

  it("shows an account none of another's endpoints, deliveries or events", async () => {
    const other = await createAccountsRepository({ db: stack.database.db }).createAccount('webhooks-other');
    const theirs = { authorization: `Bearer ${other.apiKey}` };
    const mine = (await register({ url: receiver.url })).json<{ id: string }>();
    for (const [method, url] of [
      ['DELETE', `/webhook-endpoints/${mine.id}`],
      ['POST', `/webhook-endpoints/${mine.id}/rotate-secret`],
      ['GET', `/webhook-endpoints/${mine.id}/deliveries`],
    ] as const) {
      const answer = await send(method, url, undefined, theirs);
      expect(answer.statusCode, `${method} ${url}`).toBe(404);
      expect(answer.json()).toMatchObject({ code: 'WEBHOOK_ENDPOINT_NOT_FOUND' });
    }
    expect((await send('GET', '/webhook-endpoints', undefined, theirs)).json()).toEqual([]);

    const job = await accepted();
    await createPaymentsRepository({ db: stack.database.db }).recordPayment(job, {
      status: 'succeeded',
      failureReason: null,
    });
    const [event] = await eventsOf(job.purchaseId);
    const peek = await send('POST', `/events/${event.id}/redeliver`, undefined, theirs);
    expect(peek.statusCode).toBe(404);
    expect(peek.json()).toMatchObject({ code: 'EVENT_NOT_FOUND' });
    await send('DELETE', `/webhook-endpoints/${mine.id}`);
  });

  it('writes one event per outcome in the statement that writes the outcome, and nothing when that fails', async () => {
    const endpoint = (await register({ url: receiver.url, events: ['purchase.accepted', 'purchase.succeeded'] })).json<{
      id: string;
    }>();
    const payments = createPaymentsRepository({ db: stack.database.db });
    try {
      const job = await accepted();
      // Accepted: its event came with the purchases row.
      expect((await eventsOf(job.purchaseId)).map((event) => event.type)).toEqual(['purchase.accepted']);
      // The outcome, written twice (a rerun job): one payment, one event, one delivery per endpoint.
      const outcome = { status: 'succeeded' as const, failureReason: null };
      const written = await payments.recordPayment(job, outcome);
      await payments.recordPayment(job, outcome);
      const events = await eventsOf(job.purchaseId);
      expect(events.map((event) => event.type)).toEqual(['purchase.accepted', 'purchase.succeeded']);
      const succeeded = events.find((event) => event.type === 'purchase.succeeded');
      expect(JSON.parse(succeeded.payload)).toEqual({
        type: 'purchase.succeeded',
        timestamp: expect.stringMatching(/Z$/),
        data: {
          ...written,
          createdAt: written.createdAt.toISOString(),
          updatedAt: written.updatedAt.toISOString(),
        },
      });
      expect(await deliveriesOf(succeeded.id)).toEqual([
        expect.objectContaining({ endpoint_id: endpoint.id, status: 'pending', attempts: 0 }),
      ]);

      // Not subscribed: a failed outcome writes no event. An account without endpoints: none either.
      const declined = await accepted();
      await payments.recordPayment(declined, { status: 'failed', failureReason: 'card_declined' });
      expect((await eventsOf(declined.purchaseId)).map((event) => event.type)).toEqual(['purchase.accepted']);
      const other = await createAccountsRepository({ db: stack.database.db }).createAccount('no-endpoints');
      const elsewhere = await accepted(other.accountId);
      await payments.recordPayment(elsewhere, outcome);
      expect(await eventsOf(elsewhere.purchaseId)).toEqual([]);

      // A write that fails (its product is gone) leaves neither the outcome nor its event.
      const doomed = await accepted();
      await stack.database.db('purchases').where({ id: doomed.purchaseId }).update({ product_id: doomed.productId });
      await expect(payments.recordPayment({ ...doomed, productId: 1_999_999_999 }, outcome)).rejects.toBeInstanceOf(
        ReferenceGoneError,
      );
      expect(await stack.database.db('payments').where({ id: doomed.purchaseId })).toEqual([]);
      expect((await eventsOf(doomed.purchaseId)).map((event) => event.type)).toEqual(['purchase.accepted']);
    } finally {
      await send('DELETE', `/webhook-endpoints/${endpoint.id}`);
    }
  });

  it('holds a purchase.accepted event until the purchase is known queued; drops it with a purchase never queued', async () => {
    const endpoint = (await register({ url: receiver.url, events: ['purchase.accepted'] })).json<{ id: string }>();
    const { db } = stack.database;
    const purchases = createPurchasesRepository({ db });
    const deliveries = createWebhookDeliveriesRepository({ db });
    const heldOf = async (purchaseId: string) => (await eventsOf(purchaseId)).map((event) => event.held);
    const claimedEvents = async () => (await deliveries.claimDue(1_000, 60_000)).map((claimed) => claimed.eventId);
    try {
      // Through the API (no worker runs here): queued, so released before the 202.
      const { userId, productId } = await seedUserAndProduct(db, { accountId: stack.database.account.id });
      const submitted = await send('POST', '/payment/purchase', { userId, productId });
      expect(submitted.statusCode).toBe(202);
      const { purchaseId } = submitted.json<{ purchaseId: string }>();
      expect(await heldOf(purchaseId)).toEqual([false]);

      // Recorded but not (yet) queued: held, so not sent, listed or redelivered.
      const pending = await accepted();
      const [held] = await eventsOf(pending.purchaseId);
      expect(held).toMatchObject({ type: 'purchase.accepted', held: true });
      expect(await claimedEvents()).not.toContain(held.id);
      const listed = (await send('GET', `/webhook-endpoints/${endpoint.id}/deliveries`)).json<
        Array<{ eventId: string }>
      >();
      expect(listed.map((delivery) => delivery.eventId)).toEqual([(await eventsOf(purchaseId))[0].id]);
      expect((await send('POST', `/events/${held.id}/redeliver`)).statusCode).toBe(404);

      // Released by the API, or by the outcome's write when the API could not: then it is sent.
      await purchases.releaseAcceptedEvent(pending.purchaseId);
      expect(await claimedEvents()).toContain(held.id);
      const unreleased = await accepted();
      await createPaymentsRepository({ db }).recordPayment(unreleased, { status: 'succeeded', failureReason: null });
      expect(await heldOf(unreleased.purchaseId)).toEqual([false]);

      // Answered 503, yet queued after all (its enqueue's reply was lost): once a retry is folded
      // into it and pointed at it, it is kept (not abandoned) and announced.
      const kept = await accepted();
      await purchases.markAbandoned(kept.purchaseId);
      await purchases.markQueued(kept.purchaseId);
      expect(await heldOf(kept.purchaseId)).toEqual([false]);
      expect(await db('purchases').where({ id: kept.purchaseId }).first('abandoned_at')).toEqual({
        abandoned_at: null,
      });

      // Answered 503 (or folded into another) and never queued: the reconciler drops the purchase
      // and its held event, deliveries and all.
      const abandoned = await accepted();
      const [doomed] = await eventsOf(abandoned.purchaseId);
      await purchases.markAbandoned(abandoned.purchaseId);
      await purchases.dropAbandoned(abandoned.purchaseId);
      expect(await db('purchases').where({ id: abandoned.purchaseId })).toEqual([]);
      expect(await eventsOf(abandoned.purchaseId)).toEqual([]);
      expect(await deliveriesOf(doomed.id)).toEqual([]);
    } finally {
      await send('DELETE', `/webhook-endpoints/${endpoint.id}`);
    }
  });

  it('delivers, signed, to a real receiver; logs every attempt; redelivers with the same id', async () => {
    const created = (await register({ url: receiver.url })).json<{ id: string; secret: string }>();
    const { dispatchOnce } = dispatcher();
    try {
      // What earlier tests left due (their endpoints removed since) is settled first.
      while ((await dispatchOnce()) > 0);
      const job = await accepted();
      await createPaymentsRepository({ db: stack.database.db }).recordPayment(job, {
        status: 'failed',
        failureReason: 'card_declined',
      });
      const [event] = await eventsOf(job.purchaseId);
      const before = receiver.received.length;

      receiver.answer(500);
      expect(await dispatchOnce()).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      receiver.answer(204);
      expect(await dispatchOnce()).toBe(1);
      expect(await dispatchOnce()).toBe(0);

      const got = receiver.received.slice(before);
      expect(got).toHaveLength(2);
      for (const { headers, body } of got) {
        expect(headers['webhook-id']).toBe(event.id);
        expect(body).toBe(event.payload);
        expect(new Webhook(created.secret).verify(body, headers as Record<string, string>)).toMatchObject({
          type: 'purchase.failed',
          data: { purchaseId: job.purchaseId, failureReason: 'card_declined' },
        });
      }

      const log = (await send('GET', `/webhook-endpoints/${created.id}/deliveries`)).json<
        Array<{ eventId: string; status: string; attempts: number; attemptLog: Array<{ statusCode: number | null }> }>
      >();
      expect(log).toEqual([
        expect.objectContaining({
          eventId: event.id,
          eventType: 'purchase.failed',
          purchaseId: job.purchaseId,
          status: 'delivered',
          attempts: 2,
          lastStatusCode: 204,
          nextAttemptAt: null,
          deliveredAt: expect.any(String),
        }),
      ]);
      expect(log[0]!.attemptLog.map((attempt) => attempt.statusCode)).toEqual([500, 204]);

      const again = await send('POST', `/events/${event.id}/redeliver`);
      expect(again.statusCode).toBe(202);
      expect(again.json()).toEqual({ eventId: event.id, deliveries: 1 });
      expect(await dispatchOnce()).toBe(1);
      expect(receiver.received.at(-1)!.headers['webhook-id']).toBe(event.id);
    } finally {
      await send('DELETE', `/webhook-endpoints/${created.id}`);
    }
  });

  it('marks a delivery failed, with no next retry, once a failure falls past WEBHOOK_RETRY_HOURS', async () => {
    const created = (await register({ url: receiver.url })).json<{ id: string }>();
    const { dispatchOnce } = dispatcher();
    const listed = async () =>
      (await send('GET', `/webhook-endpoints/${created.id}/deliveries`)).json<
        Array<{ status: string; nextAttemptAt: string | null; attemptLog: Array<{ statusCode: number | null }> }>
      >();
    try {
      while ((await dispatchOnce()) > 0);
      const job = await accepted();
      await createPaymentsRepository({ db: stack.database.db }).recordPayment(job, {
        status: 'succeeded',
        failureReason: null,
      });
      const [event] = await eventsOf(job.purchaseId);
      receiver.answer(500);

      // Within its retry hours, a 500 is retried.
      expect(await dispatchOnce()).toBe(1);
      expect(await listed()).toEqual([
        expect.objectContaining({ eventId: event.id, status: 'pending', nextAttemptAt: expect.any(String) }),
      ]);

      // Its retries started longer ago than that: the next 500 is its last.
      await stack.database
        .db('webhook_deliveries')
        .where({ event_id: event.id })
        .update({
          retry_started_at: stack.database.db.raw(`now() - make_interval(hours => ?)`, [RETRY_HOURS + 1]),
          next_attempt_at: stack.database.db.fn.now(),
        });
      expect(await dispatchOnce()).toBe(1);
      const [delivery] = await listed();
      expect(delivery).toMatchObject({
        eventId: event.id,
        status: 'failed',
        attempts: 2,
        lastStatusCode: 500,
        nextAttemptAt: null,
        deliveredAt: null,
      });
      expect(delivery!.attemptLog.map((attempt) => attempt.statusCode)).toEqual([500, 500]);
      // Failed for good: nothing takes it again.
      expect(await dispatchOnce()).toBe(0);
    } finally {
      receiver.answer(204);
      await send('DELETE', `/webhook-endpoints/${created.id}`);
    }
  });
});
