import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newWebhookSecret } from '../../src/shared/webhooks/signing.js';
import { acceptPurchases, allReach } from '../support/fault-kit.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import type { RunningWorker } from '../support/processes.js';
import { createPurchaseClient, type PurchaseClient } from '../support/purchase-client.js';
import { scratchAccountId, seedProducts, seedUsers } from '../support/services.js';
import {
  allDelivered,
  createWebhookClient,
  FAST_DISPATCH,
  LOOPBACK_RECEIVERS,
  type WebhookClient,
} from '../support/webhook-client.js';
import { startWebhookReceiver, verifiedEvents, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Issue 12, webhooks when things go wrong: an endpoint outside the allow-list, a receiver that is
 * down, a worker killed mid-delivery. Deliveries live in Postgres and the dispatcher never
 * touches the store backend, so one backend covers them. Every test starts its own dispatching
 * worker, so the one under test is the only dispatcher.
 */
describe('webhooks under faults (redis backend)', () => {
  let stack: ProcessStack;
  let client: PurchaseClient;
  let webhooks: WebhookClient;
  const receivers: WebhookReceiver[] = [];
  const workers: RunningWorker[] = [];

  beforeAll(async () => {
    stack = await createProcessStack({ backend: 'redis' });
    const api = await stack.startApi(LOOPBACK_RECEIVERS);
    client = createPurchaseClient(api.url);
    webhooks = createWebhookClient(api.url);
  });

  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.stop('SIGTERM', 5_000);
  });

  afterAll(async () => {
    for (const receiver of receivers) await receiver.close();
    await stack?.close();
  });

  async function receiverOn(host?: string): Promise<WebhookReceiver> {
    const receiver = await startWebhookReceiver(host);
    receivers.push(receiver);
    return receiver;
  }

  async function startWorker(overrides: Record<string, string> = {}): Promise<RunningWorker> {
    const worker = await stack.startWorker({ ...LOOPBACK_RECEIVERS, ...FAST_DISPATCH, ...overrides });
    workers.push(worker);
    return worker;
  }

  /** Accepts `count` purchases of distinct users; returns their ids. */
  async function purchases(count: number): Promise<string[]> {
    const userIds = await seedUsers(stack.db, count);
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    return acceptPurchases(
      client,
      userIds.map((userId) => ({ userId, productId })),
    );
  }

  it('refuses loopback URLs left out of WEBHOOK_ALLOWED_HOSTS at registration, and again before connecting', async () => {
    const outsider = await receiverOn('127.0.0.2');
    for (const url of [
      `http://127.0.0.2:${outsider.port}/`,
      `http://[::1]:${outsider.port}/`,
      `http://localhost:${outsider.port}/`,
    ]) {
      const result = await webhooks.register({ url });
      expect(result.status, url).toBe(422);
      expect(result.body, url).toMatchObject({ code: 'WEBHOOK_URL_NOT_ALLOWED' });
    }
    expect(await webhooks.list()).toEqual([]);

    // Registered while the allow-list still had it, say: the dispatcher checks again.
    const [inserted] = (await stack
      .db('webhook_endpoints')
      .insert({
        account_id: await scratchAccountId(stack.db),
        url: `${outsider.origin}/`,
        events: ['purchase.succeeded', 'purchase.failed'],
        secret: newWebhookSecret(),
      })
      .returning('id')) as [{ id: string }];
    const allowed = await receiverOn();
    const control = await webhooks.registered(`${allowed.origin}/`);
    // A redirect to it is not followed either.
    const redirecting = await receiverOn();
    redirecting.answerWith({ status: 307, headers: { location: `${outsider.origin}/` } });
    const redirect = await webhooks.registered(`${redirecting.origin}/`);
    await startWorker();

    const [purchaseId] = await purchases(1);

    await allowed.waitFor(
      (received) => received.find((request) => request.answered === 200),
      `the webhook of ${purchaseId} at 127.0.0.1`,
    );
    // Retried, and refused every time.
    const [refused] = await webhooks.deliveriesReach(
      inserted.id,
      (deliveries) => (deliveries[0] && deliveries[0].attemptLog.length >= 2 ? deliveries : undefined),
      'two refused attempts',
    );
    expect(refused).toMatchObject({
      purchaseId,
      status: 'pending',
      lastStatusCode: null,
      nextAttemptAt: expect.any(String),
    });
    expect(refused!.lastError).toMatch(/^refused: 127\.0\.0\.2 /);
    for (const attempt of refused!.attemptLog) expect(attempt.error).toMatch(/^refused/);
    const [row] = await stack.db('webhook_deliveries').where({ endpoint_id: inserted.id });
    expect(row).toMatchObject({ status: 'pending', last_error: expect.stringMatching(/^refused/) });
    const [redirected] = await webhooks.deliveriesReach(
      redirect.id,
      (deliveries) => (deliveries[0] && deliveries[0].attemptLog.length >= 2 ? deliveries : undefined),
      'two redirected attempts',
    );
    expect(redirected).toMatchObject({
      purchaseId,
      status: 'pending',
      lastStatusCode: 307,
      lastError: 'HTTP 307',
      nextAttemptAt: expect.any(String),
    });
    expect(redirecting.received().length).toBeGreaterThanOrEqual(2);
    expect(outsider.received()).toEqual([]);
    expect((await webhooks.deliveries(control.id)).map((delivery) => delivery.status)).toEqual(['delivered']);

    for (const endpoint of [control, redirect]) await webhooks.remove(endpoint.id);
    await stack.db('webhook_endpoints').where({ id: inserted.id }).update({ deleted_at: stack.db.fn.now() });
  });

  it('delivers every event once a receiver that refused connections, then answered 500, is back', async () => {
    const receiver = await receiverOn();
    const endpoint = await webhooks.registered(`${receiver.origin}/`);
    await receiver.down();
    await startWorker();
    const ids = await purchases(5);

    await webhooks.deliveriesReach(
      endpoint.id,
      (deliveries) =>
        deliveries.length === ids.length && deliveries.every((delivery) => delivery.attemptLog.length >= 2)
          ? deliveries
          : undefined,
      'two refused attempts of every delivery',
    );
    expect(receiver.received()).toEqual([]);
    receiver.answerWith({ status: 500 });
    await receiver.up();
    const eventIds = (await webhooks.deliveries(endpoint.id)).map((delivery) => delivery.eventId);
    await receiver.waitFor(
      (received) =>
        eventIds.every((id) =>
          received.some((request) => request.headers['webhook-id'] === id && request.answered === 500),
        )
          ? true
          : undefined,
      'a 500 to every event',
    );
    receiver.answerWith({ status: 200 });
    const deliveries = await webhooks.deliveriesReach(endpoint.id, allDelivered(ids.length), 'every delivery');

    const events = verifiedEvents(receiver.received(), endpoint.secret);
    expect([...events.keys()].sort()).toEqual([...eventIds].sort());
    expect([...events.values()].map((event) => event.data.purchaseId).sort()).toEqual([...ids].sort());
    for (const delivery of deliveries) {
      const log = delivery.attemptLog;
      expect(delivery).toMatchObject({ lastStatusCode: 200, lastError: null, nextAttemptAt: null });
      expect(log.map((attempt) => attempt.attempt)).toEqual(log.map((_, index) => index + 1));
      expect(delivery.attempts).toBe(log.length);
      // Refused while down, 500 while failing, then the one 2xx that settles it.
      const story = log.map((attempt) => attempt.statusCode ?? attempt.error).join(' ');
      expect(story).toMatch(/^(ECONNREFUSED ){2,}(500 )+200$/);
      for (const attempt of log.filter((attempt) => attempt.statusCode === 500)) expect(attempt.error).toBe('HTTP 500');
      // What the receiver answered is what the log says, attempt for attempt.
      expect(receiver.deliveriesOf(delivery.eventId).map((request) => request.answered)).toEqual(
        log.filter((attempt) => attempt.statusCode !== null).map((attempt) => attempt.statusCode),
      );
      // Backing off exponentially: 200 ms, then doubling (each ±10 %), less the time to record an attempt.
      for (let index = 1; index < log.length; index++) {
        const gap = Date.parse(log[index]!.attemptedAt) - Date.parse(log[index - 1]!.attemptedAt);
        expect(gap, `before attempt ${index + 1}`).toBeGreaterThanOrEqual(0.9 * 200 * 2 ** (index - 1) - 150);
      }
    }
    await webhooks.remove(endpoint.id);
  });

  it('loses nothing when a worker is killed mid-delivery: another sends the same events once the lease runs out', async () => {
    const receiver = await receiverOn();
    const endpoint = await webhooks.registered(`${receiver.origin}/`);
    // The outcomes are written by a worker that does not dispatch, so the doomed one takes every
    // delivery in its first pass.
    const payer = await startWorker({ WEBHOOK_DISPATCH_INTERVAL_MS: '0' });
    const ids = await purchases(6);
    await allReach(client, ids, ['succeeded', 'failed']);
    await webhooks.deliveriesReach(
      endpoint.id,
      (deliveries) => (deliveries.length === ids.length ? deliveries : undefined),
      'a delivery per outcome',
    );
    await payer.stop('SIGTERM');
    receiver.hold();
    // Leased for 6 + 1 s; the answers are held for less than the 6 s it waits for them.
    const leaseMs = 7_000;
    const doomed = await startWorker({ WEBHOOK_TIMEOUT_MS: '6000', WEBHOOK_LEASE_MARGIN_MS: '1000' });
    await receiver.waitFor(
      () => (receiver.waiting().length === ids.length ? true : undefined),
      'every delivery in flight',
    );
    // The rescuer's dispatcher passes over them while the doomed worker's lease holds.
    await startWorker();
    await sleep(600);
    expect(receiver.received()).toHaveLength(ids.length);
    expect(receiver.waiting()).toHaveLength(ids.length);

    expect(await doomed.stop('SIGKILL')).toBe('SIGKILL');

    await receiver.waitFor(
      () => (receiver.waiting().length === 0 ? true : undefined),
      "the dead worker's connections to close",
    );
    // Taken (the attempt counted) but never recorded.
    for (const delivery of await webhooks.deliveries(endpoint.id)) {
      expect(delivery).toMatchObject({ status: 'pending', attempts: 1, lastError: null, attemptLog: [] });
    }
    receiver.release();
    const deliveries = await webhooks.deliveriesReach(endpoint.id, allDelivered(ids.length), 'every delivery', 20_000);

    const events = verifiedEvents(receiver.received(), endpoint.secret);
    expect([...events.values()].map((event) => event.data.purchaseId).sort()).toEqual([...ids].sort());
    for (const delivery of deliveries) {
      const [lost, ...resent] = receiver.deliveriesOf(delivery.eventId);
      expect(lost!.answered).toBeNull();
      expect(resent.map((request) => request.answered)).toEqual([200]);
      // Not before the dead worker's lease ran out (less the moment between its claim and its send).
      expect(resent[0]!.receivedAt - lost!.receivedAt).toBeGreaterThanOrEqual(leaseMs - 250);
      expect(delivery).toMatchObject({ attempts: 2, lastStatusCode: 200 });
      expect(delivery.attemptLog).toMatchObject([{ attempt: 2, statusCode: 200, error: null }]);
    }
    await webhooks.remove(endpoint.id);
  });
});
