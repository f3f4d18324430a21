import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_BACKENDS } from '../support/backends.js';
import { createPurchaseClient, purchaseIdIn, type HttpResult } from '../support/purchase-client.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { idempotencyKeyFor } from '../../src/shared/purchase/idempotency.js';
import type { PurchaseJob } from '../../src/shared/purchase/purchase.js';
import { bullmqPrefix } from '../../src/shared/redis/keys.js';
import type { EnqueueResult, PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { startWorker, type RunningApi, type RunningProcess } from '../support/processes.js';
import { eventually, seedUserAndProduct, TEST_REDIS_URL } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';
import { expectChargedOnceEach, PATIENT_API } from '../support/fault-kit.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/**
 * Issue 4, item 6: the API dies after claiming a key and before its job is enqueued. The claim
 * must free the key within IDEMPOTENCY_PENDING_TTL_SECONDS, not IDEMPOTENCY_TTL_SECONDS (300 s
 * here), and a retry must then be accepted and charged once.
 */
describe.each(STORE_BACKENDS)(
  'crash between claim and enqueue, in-process: an enqueue that never returns (%s backend)',
  (backend) => {
    let stack: TestStack;
    let worker: RunningProcess;
    /** While true, enqueues never reach the queue and never return, as if the process had died. */
    let frozen = false;
    /** Settles a parked enqueue (test cleanup, or to play "the process was only slow"). */
    const parked: Array<(error: Error) => void> = [];
    let onParked: () => void = () => {};

    beforeAll(async () => {
      stack = await createTestStack({
        backend,
        env: { ...PATIENT_API, IDEMPOTENCY_PENDING_TTL_SECONDS: '1', IDEMPOTENCY_TTL_SECONDS: '300' },
        wrapProducer: (producer): PurchaseProducer => ({
          ...producer,
          enqueuePurchase(job: PurchaseJob): Promise<EnqueueResult> {
            if (!frozen) return producer.enqueuePurchase(job);
            return new Promise<EnqueueResult>((_, reject) => {
              parked.push(reject);
              onParked();
            });
          },
        }),
      });
      worker = await startWorker(stack.workerEnv());
    });

    afterAll(async () => {
      for (const reject of parked.splice(0)) reject(new Error('test over'));
      await worker?.stop();
      await stack?.close();
    });

    it('frees the key after the pending TTL; a retry is accepted and charged once', async () => {
      const { userId, productId } = await seedUserAndProduct(stack.database.db);
      const claimKey = idempotencyKeyFor({ userId, productId, headerKey: 'order-1' });
      const claimOf = async () => (await stack.heldClaims([claimKey]))[0];
      const purchase = () =>
        stack.app.inject({
          method: 'POST',
          url: '/payment/purchase',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'order-1' },
          payload: JSON.stringify({ userId, productId }),
        });

      frozen = true;
      const enqueueReached = new Promise<void>((resolve) => (onParked = resolve));
      const stuckRequest = purchase();
      await enqueueReached;
      const claimedAt = performance.now();

      // Claimed, but only for the pending life; no job exists behind it.
      const stuck = await claimOf();
      expect(stuck).toMatchObject({ confirmed: false });
      const stuckId = stuck!.purchaseId;
      expect(stuck!.ttlMs).toBeGreaterThan(0);
      expect(stuck!.ttlMs).toBeLessThanOrEqual(1_000);
      expect(await stack.queue.getJob(stuckId)).toBeUndefined();

      // Free again within the pending TTL (plus the backend's expiry granularity), not after 300 s.
      await eventually(async () => ((await claimOf()) === undefined ? true : undefined), {
        timeoutMs: 5_000,
        intervalMs: 20,
        what: 'the pending claim to expire',
      });
      expect(performance.now() - claimedAt).toBeLessThan(3_000);

      frozen = false;
      const retried = await purchase();
      expect(retried.statusCode, retried.body).toBe(202);
      const purchaseId = (retried.json() as { purchaseId: string }).purchaseId;
      expect(purchaseId).not.toBe(stuckId);
      // Confirmed: the retry's claim now lives for the full TTL.
      const retriedClaim = await claimOf();
      expect(retriedClaim).toMatchObject({ purchaseId, confirmed: true });
      expect(retriedClaim!.ttlMs).toBeGreaterThan(250_000);
      await eventually(
        async () => {
          const answer = await stack.app.inject({ method: 'GET', url: `/payment/purchase/${purchaseId}` });
          return (answer.json() as { status: string }).status === 'succeeded' ? true : undefined;
        },
        { timeoutMs: 10_000, what: 'the retried purchase to succeed' },
      );
      const rows = (await stack.database.db('payments').where({ user_id: userId })) as { id: string }[];
      expect(rows.map((row) => row.id)).toEqual([purchaseId]);
      // Charged once, and the purchase that never got its job never charged.
      await expectChargedOnceEach(stack.database.db, [purchaseId, stuckId], { nothingElse: true });

      // Had the first request only been slow, its late failure must not release the retry's claim.
      for (const reject of parked.splice(0)) reject(new Error('the enqueue failed after all'));
      expect((await stuckRequest).statusCode).toBe(503);
      expect(await claimOf()).toMatchObject({ purchaseId });
    });
  },
);

/**
 * The same crash with real processes: the API reaches its queue (Redis, or Postgres on the
 * Postgres backend, where BullMQ keeps its tables) through a TCP proxy that holds the connection
 * the moment BullMQ's add-job command arrives (after the claim went through), and the API is
 * SIGKILLed right then.
 */
describe.each(STORE_BACKENDS)(
  'crash between claim and enqueue, real processes: API SIGKILLed while its enqueue is in flight (%s backend)',
  (backend) => {
    const PENDING_TTL_SECONDS = 2;
    let stack: ProcessStack;
    let proxy: TcpProxy;
    /** The doomed API's environment: its queue's server reached through the proxy. */
    let throughProxy: Record<string, string>;
    /** What BullMQ sends to add a job: the Lua script's wait-list key, or the Postgres function call. */
    let enqueueMarker: string;

    beforeAll(async () => {
      stack = await createProcessStack({ backend });
      const queueServer = new URL(backend === 'redis' ? TEST_REDIS_URL : stack.databaseUrl);
      proxy = await startTcpProxy({ port: Number(queueServer.port || (backend === 'redis' ? 6379 : 5432)) });
      throughProxy =
        backend === 'redis'
          ? { REDIS_URL: proxy.rewrite(TEST_REDIS_URL) }
          : { DATABASE_URL: proxy.rewrite(stack.databaseUrl) };
      enqueueMarker = backend === 'redis' ? `${bullmqPrefix(stack.prefix)}:${stack.queueName}:wait` : 'SELECT add_job(';
      await stack.startWorker({ PAYMENT_DELAY_MS: '0' });
    });

    afterAll(async () => {
      await stack?.close();
      await proxy?.close();
    });

    it('leaves a claim that expires within the pending TTL; the client retry then goes through once', async () => {
      const settings = {
        ...PATIENT_API,
        IDEMPOTENCY_PENDING_TTL_SECONDS: String(PENDING_TTL_SECONDS),
        IDEMPOTENCY_TTL_SECONDS: '300',
      };
      const doomed: RunningApi = await stack.startApi({ ...settings, ...throughProxy });
      // Another API instance, already running, as behind a load balancer: the client retries there.
      const client = createPurchaseClient((await stack.startApi(settings)).url);
      const { userId, productId } = await seedUserAndProduct(stack.db);
      const claimKey = idempotencyKeyFor({ userId, productId, headerKey: 'order-2' });
      const body = { userId, productId };

      const enqueueSent = proxy.trap(enqueueMarker, 'hold');
      const lost = createPurchaseClient(doomed.url)
        .purchase(body, { idempotencyKey: 'order-2' })
        .catch((error: unknown) => error);
      await enqueueSent;
      expect(await doomed.stop('SIGKILL')).toBe('SIGKILL');
      const diedAt = performance.now();
      // The client never got an answer.
      expect(await lost).toBeInstanceOf(Error);

      const [stuck] = await stack.heldClaims([claimKey]);
      expect(stuck).toMatchObject({ confirmed: false });
      const stuckId = stuck!.purchaseId;
      expect(stuck!.ttlMs).toBeGreaterThan(0);
      expect(stuck!.ttlMs).toBeLessThanOrEqual(PENDING_TTL_SECONDS * 1000);
      expect(await stack.getJob(stuckId)).toBeUndefined();

      // The client retries on the other instance until its purchase is accepted. Until the
      // claim expires it is told the purchase is a duplicate (a documented limit).
      const answers: HttpResult[] = [];
      const purchaseId = await eventually(
        async () => {
          const result = await client.purchase(body, { idempotencyKey: 'order-2' });
          answers.push(result);
          if (result.status === 503) return undefined;
          const holder = purchaseIdIn(result.headers.get('location'));
          // A 204 after a 503 points at the job the refused try did enqueue: accepted too.
          return result.status === 202 || holder !== stuckId ? holder : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 100, what: 'the retry to be accepted' },
      );
      // Within the pending TTL (2 s) and some scheduling slack, not the 300 s TTL.
      expect(performance.now() - diedAt).toBeLessThan(PENDING_TTL_SECONDS * 1000 + 3_000);
      for (const answer of answers.slice(0, -1)) {
        expect([204, 503]).toContain(answer.status);
        if (answer.status === 204) expect(purchaseIdIn(answer.headers.get('location'))).toBe(stuckId);
      }

      expect(await client.purchaseReaches(purchaseId, ['succeeded', 'failed'])).toMatchObject({
        status: 'succeeded',
      });
      expect(await stack.payments({ user_id: userId })).toMatchObject([{ id: purchaseId, status: 'succeeded' }]);
      expect(await stack.getJob(stuckId)).toBeUndefined();
      await expectChargedOnceEach(stack.db, [purchaseId, stuckId], { nothingElse: true });
    });
  },
);
