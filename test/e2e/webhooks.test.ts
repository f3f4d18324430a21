import { WebhookVerificationError } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newWebhookSecret } from '../../src/shared/webhooks/signing.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { allReach, mapBounded, submitPurchase } from '../support/fault-kit.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { createPurchaseClient, purchaseIdIn, type PurchaseClient } from '../support/purchase-client.js';
import { seedProducts, seedUserAndProduct, seedUsers } from '../support/services.js';
import {
  allDelivered,
  createWebhookClient,
  FAST_DISPATCH,
  LOOPBACK_RECEIVERS,
  type WebhookClient,
} from '../support/webhook-client.js';
import {
  eventIdsOf,
  startWebhookReceiver,
  verifiedEvents,
  verifyWebhook,
  type ReceivedWebhook,
  type WebhookReceiver,
} from '../support/webhook-receiver.js';

/** Issue 12, webhooks: what a receiver of the test's own gets from the real API and worker. */
describe.each(STORE_BACKENDS)('webhooks (%s backend)', (backend) => {
  let stack: ProcessStack;
  let client: PurchaseClient;
  let webhooks: WebhookClient;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    const api = await stack.startApi(LOOPBACK_RECEIVERS);
    client = createPurchaseClient(api.url);
    webhooks = createWebhookClient(api.url);
    await stack.startWorker({ ...LOOPBACK_RECEIVERS, ...FAST_DISPATCH, PAYMENT_DECLINE_RATE: '0.3' });
    receiver = await startWebhookReceiver();
  });

  afterAll(async () => {
    await receiver?.close();
    await stack?.close();
  });

  /** What the receiver got at `path` (each test registers its own), answered or not. */
  const at = (path: string) => receiver.received().filter((request) => request.path === path);

  /** Makes one purchase and waits until the receiver has answered 200 to its outcome's webhook at `path`. */
  async function purchaseDelivered(path: string): Promise<ReceivedWebhook> {
    const { userId, productId } = await seedUserAndProduct(stack.db);
    const accepted = await client.purchase({ userId, productId });
    expect(accepted.status).toBe(202);
    const purchaseId = purchaseIdIn(accepted.headers.get('location'));
    return receiver.waitFor(
      () =>
        at(path).find(
          (request) =>
            request.answered === 200 &&
            (JSON.parse(request.body) as { data: { purchaseId: string } }).data.purchaseId === purchaseId,
        ),
      `the webhook of purchase ${purchaseId}`,
    );
  }

  it('sends one event per outcome across a burst with declines and duplicates, as the purchase reads', async () => {
    const outcomes = await webhooks.registered(`${receiver.origin}/outcomes`);
    expect(outcomes.events).toEqual(['purchase.succeeded', 'purchase.failed']);
    const everything = await webhooks.registered(`${receiver.origin}/everything`, [
      'purchase.accepted',
      'purchase.succeeded',
      'purchase.failed',
    ]);
    const purchases = 30;
    const userIds = await seedUsers(stack.db, purchases);
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    // Every third user's client sends its purchase twice at once (a double click).
    const submissions = userIds.flatMap((userId, index) => (index % 3 === 0 ? [userId, userId] : [userId]));

    const submitted = await mapBounded(submissions, 20, (userId) => submitPurchase(client, { userId, productId }));

    expect(submitted.filter((submission) => submission.outcome === 'duplicate')).toHaveLength(
      submissions.length - purchases,
    );
    const ids = [...new Set(submitted.map((submission) => submission.purchaseId))];
    expect(ids).toHaveLength(purchases);
    const views = new Map(
      (await allReach(client, ids, ['succeeded', 'failed'])).map((view) => [view.purchaseId, view]),
    );
    const payments = await stack.payments();
    expect(payments.map((payment) => payment.id).sort()).toEqual([...ids].sort());
    for (const payment of payments) expect(views.get(payment.id)?.status).toBe(payment.status);
    // Declines happened, and so did charges (0.7^30 and 0.3^30 are both negligible).
    expect(new Set(payments.map((payment) => payment.status))).toEqual(new Set(['succeeded', 'failed']));

    await webhooks.deliveriesReach(outcomes.id, allDelivered(purchases), `${purchases} outcome deliveries`);
    await webhooks.deliveriesReach(everything.id, allDelivered(2 * purchases), `${2 * purchases} deliveries`);

    // One event per outcome, its body the purchase as GET shows it.
    const outcomeEvents = verifiedEvents(at('/outcomes'), outcomes.secret);
    expect(outcomeEvents.size).toBe(purchases);
    const outcomeOf = new Map([...outcomeEvents.values()].map((event) => [event.data.purchaseId, event]));
    expect([...outcomeOf.keys()].sort()).toEqual([...ids].sort());
    for (const [purchaseId, view] of views) {
      expect(outcomeOf.get(purchaseId)?.type).toBe(`purchase.${view.status}`);
      expect(outcomeOf.get(purchaseId)?.data).toEqual(view);
    }
    // The endpoint that also takes acceptances gets those, and the very same outcome events (same id).
    const allEvents = [...verifiedEvents(at('/everything'), everything.secret).values()];
    expect(allEvents).toHaveLength(2 * purchases);
    for (const [purchaseId, view] of views) {
      const ofPurchase = allEvents.filter((event) => event.data.purchaseId === purchaseId);
      expect(ofPurchase.map((event) => event.type).sort()).toEqual(['purchase.accepted', `purchase.${view.status}`]);
      expect(ofPurchase.find((event) => event.type === 'purchase.accepted')?.data).toEqual({
        ...view,
        status: 'queued',
        failureReason: null,
        updatedAt: view.createdAt,
      });
      expect(ofPurchase.find((event) => event.type !== 'purchase.accepted')?.id).toBe(outcomeOf.get(purchaseId)?.id);
    }
    // The deliveries log names exactly the events received.
    const logged = await webhooks.deliveries(outcomes.id);
    expect(logged.map((delivery) => delivery.eventId).sort()).toEqual(eventIdsOf(at('/outcomes')).sort());

    for (const endpoint of [outcomes, everything]) expect((await webhooks.remove(endpoint.id)).status).toBe(204);
    expect((await webhooks.list()).map((endpoint) => endpoint.id)).not.toContain(outcomes.id);
  });

  it('signs with the secret; a tampered body, timestamp or id fails; a rotation signs with both secrets for a while', async () => {
    const endpoint = await webhooks.registered(`${receiver.origin}/signed`);
    const first = await purchaseDelivered('/signed');

    expect(verifyWebhook(endpoint.secret, first)).toEqual(JSON.parse(first.body));
    const tampered: Array<[string, Partial<ReceivedWebhook>]> = [
      [
        'body',
        { body: first.body.replace(/("amount"\s*:\s*)(\d+)/, (_, key: string, n: string) => `${key}${+n + 1}`) },
      ],
      [
        'timestamp',
        { headers: { ...first.headers, 'webhook-timestamp': String(+first.headers['webhook-timestamp']! - 1) } },
      ],
      ['id', { headers: { ...first.headers, 'webhook-id': `msg_${'0'.repeat(32)}` } }],
    ];
    for (const [what, change] of tampered) {
      const forged = { ...first, ...change };
      expect(() => verifyWebhook(endpoint.secret, forged), `a tampered ${what}`).toThrow(WebhookVerificationError);
    }
    expect(() => verifyWebhook(newWebhookSecret(), first), 'another secret').toThrow(WebhookVerificationError);

    const rotation = await webhooks.rotateSecret(endpoint.id);
    expect(rotation.status).toBe(200);
    const rotated = rotation.body as { secret: string; previousSecretExpiresAt: string };
    expect(rotated.secret).not.toBe(endpoint.secret);
    const graceHours = (Date.parse(rotated.previousSecretExpiresAt) - Date.now()) / 3_600_000;
    expect(graceHours).toBeGreaterThan(23.9);
    expect(graceHours).toBeLessThanOrEqual(24);

    const during = await purchaseDelivered('/signed');
    expect(during.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(verifyWebhook(endpoint.secret, during), 'the old secret during the grace period').toBeTruthy();
    expect(verifyWebhook(rotated.secret, during), 'the new secret').toBeTruthy();

    // The grace period is over.
    await stack
      .db('webhook_endpoints')
      .where({ id: endpoint.id })
      .update({ previous_secret_expires_at: stack.db.raw(`now() - interval '1 second'`) });
    const after = await purchaseDelivered('/signed');
    expect(after.headers['webhook-signature']!.split(' ')).toHaveLength(1);
    expect(verifyWebhook(rotated.secret, after), 'the new secret').toBeTruthy();
    expect(() => verifyWebhook(endpoint.secret, after), 'the old secret after the grace period').toThrow(
      WebhookVerificationError,
    );
    expect((await webhooks.remove(endpoint.id)).status).toBe(204);
  });

  it('redelivers an event on request: the receiver gets the same event id and body again', async () => {
    const endpoint = await webhooks.registered(`${receiver.origin}/redelivered`);
    const first = await purchaseDelivered('/redelivered');
    const eventId = first.headers['webhook-id']!;
    // Settled first: a redelivery asked for while the first attempt is still being recorded is another story.
    await webhooks.deliveriesReach(endpoint.id, allDelivered(1), 'the first delivery to be recorded');

    const redelivery = await webhooks.redeliver(eventId);

    expect(redelivery.status).toBe(202);
    expect(redelivery.body).toEqual({ eventId, deliveries: 1 });
    const again = await receiver.waitFor(
      () => at('/redelivered').filter((request) => request.answered === 200)[1],
      `the redelivery of ${eventId}`,
    );
    expect(again.headers['webhook-id']).toBe(eventId);
    expect(again.body).toBe(first.body);
    expect(verifiedEvents(at('/redelivered'), endpoint.secret).size).toBe(1);
    const [delivery] = await webhooks.deliveriesReach(endpoint.id, allDelivered(1), 'the redelivery to be recorded');
    expect(delivery).toMatchObject({ eventId, status: 'delivered', attempts: 2, lastStatusCode: 200 });
    expect(delivery!.attemptLog.map((attempt) => attempt.statusCode)).toEqual([200, 200]);

    // Asked for while an attempt is under way (the receiver holding its answer): not lost when that attempt settles.
    receiver.hold();
    try {
      expect((await webhooks.redeliver(eventId)).status).toBe(202);
      await receiver.waitFor(() => (receiver.waiting().length === 1 ? true : undefined), 'the third attempt in flight');
      expect((await webhooks.redeliver(eventId)).status).toBe(202);
    } finally {
      receiver.release();
    }
    await receiver.waitFor(
      () => at('/redelivered').filter((request) => request.answered === 200)[3],
      `the redelivery of ${eventId} asked for during an attempt`,
    );
    const [settled] = await webhooks.deliveriesReach(
      endpoint.id,
      allDelivered(1),
      'the last redelivery to be recorded',
    );
    expect(settled!.attemptLog.map((attempt) => attempt.statusCode)).toEqual([200, 200, 200, 200]);

    const unknown = await webhooks.redeliver(`msg_${'0'.repeat(32)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'EVENT_NOT_FOUND' });
    expect((await webhooks.remove(endpoint.id)).status).toBe(204);
  });
});
