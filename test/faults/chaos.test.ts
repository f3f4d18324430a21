import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTimeout } from '../../src/shared/timeout.js';
import {
  verifyBurst,
  type BurstPair,
  type BurstResponse,
  type ChargeRecord,
  type PaymentRecord,
} from '../../scripts/burst/verify.js';
import { createPurchaseClient, type PurchaseClient } from '../support/purchase-client.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import type { RunningProcess } from '../support/processes.js';
import { eventually, seedProducts, seedUsers } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import {
  expectChargedOnceEach,
  FAST_STALL_RECOVERY,
  type GatewayChargeRow,
  mapBounded,
  PATIENT_API,
  submitPurchase,
} from '../support/fault-kit.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const PAIRS = 100;
const COPIES = 5;
const CONCURRENCY = 25;
/** Mean pause before each request of a lane: 500 requests over about 6 s. */
const BURST_PACE_MS = (6_000 * CONCURRENCY) / (PAIRS * COPIES);

/**
 * Issue 4, item 8: a burst of distinct and duplicate purchases while one worker is SIGKILLed and
 * restarted, a payment write commits without its reply reaching the worker, and Postgres is cut
 * for 2 s under both workers (they reach it through one TCP proxy; the API and the simulated
 * gateway reach it directly). Afterwards Postgres must hold exactly one payment per accepted
 * purchase, none for anything else, and every accepted purchase must have finished; the
 * gateway's ledger must hold exactly one charge per payment, and none for anything else. On the
 * Postgres backend the cut takes the workers' queue as well (it lives in that database), so the
 * jobs they held come back through the stalled-job check rather than a retry; same verdict.
 */
describe.each(STORE_BACKENDS)(
  'chaos: duplicates and distinct purchases through a worker crash and a Postgres cut (%s backend)',
  (backend) => {
    let stack: ProcessStack;
    let proxy: TcpProxy;
    let client: PurchaseClient;
    const retries = { JOB_ATTEMPTS: '10', JOB_BACKOFF_MS: '200' };

    beforeAll(async () => {
      stack = await createProcessStack({ backend });
      proxy = await startTcpProxy({ port: Number(new URL(stack.databaseUrl).port || 5432) });
      client = createPurchaseClient((await stack.startApi({ ...PATIENT_API, ...retries })).url);
    });

    afterAll(async () => {
      proxy?.restore();
      await stack?.close();
      await proxy?.close();
    });

    it('pays every accepted purchase exactly once and nothing else', async () => {
      const workerEnv = {
        ...retries,
        ...FAST_STALL_RECOVERY,
        DATABASE_URL: proxy.rewrite(stack.databaseUrl),
        // The payment provider stays up while payonce's database is cut.
        GATEWAY_DATABASE_URL: stack.databaseUrl,
        PAYMENT_DELAY_MS: '400',
        WORKER_CONCURRENCY: '5',
      };
      const startWorker = () => stack.startWorker(workerEnv);
      const workers: RunningProcess[] = [await startWorker(), await startWorker()];

      const userIds = await seedUsers(stack.db, PAIRS);
      const productIds = await seedProducts(stack.db, 5);
      const pairs: BurstPair[] = userIds.map((userId, index) => ({
        userId,
        productId: productIds[index % productIds.length]!,
      }));
      const work = pairs.flatMap((_, pair) => Array.from({ length: COPIES }, () => pair));
      for (let i = work.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [work[i], work[j]] = [work[j]!, work[i]!];
      }

      // Paced so that requests, first copies as well as duplicates, keep arriving through both
      // faults. Clients retry 503s as the README says; see submitPurchase for what they conclude.
      const burst = mapBounded(work, CONCURRENCY, async (pair): Promise<BurstResponse> => {
        await sleep(Math.random() * 2 * BURST_PACE_MS);
        const { outcome, purchaseId } = await submitPurchase(client, pairs[pair]!);
        return { pair, status: outcome === 'accepted' ? 202 : 204, purchaseId };
      });

      burst.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
      const paid = async () => Number((await stack.db('payments').count({ n: '*' }))[0]!.n);
      const paidAtLeast = (count: number) =>
        eventually(async () => ((await paid()) >= count ? true : undefined), {
          timeoutMs: 20_000,
          what: `${count} payments`,
        });

      // Fault 1: a worker dies holding jobs mid-payment, and comes back.
      await paidAtLeast(10);
      expect((await stack.jobCounts()).active, 'nothing was in flight when the worker died').toBeGreaterThan(0);
      expect(await workers[0]!.stop('SIGKILL')).toBe('SIGKILL');
      workers[0] = await startWorker();

      // Fault 2: a payment write that Postgres commits but whose reply never comes back...
      await paidAtLeast(40);
      const lostReply = await withTimeout(
        proxy.trap('insert into payments', 'drop-replies'),
        10_000,
        'a payment write to pass the proxy',
      );
      // The statement carries its purchase ids as parameters.
      const unanswered = [...new Set(lostReply.toString('latin1').match(UUID) ?? [])];
      expect(unanswered.length).toBeGreaterThan(0);
      await eventually(
        async () =>
          (await stack.db('payments').whereIn('id', unanswered)).length === unanswered.length ? true : undefined,
        { what: 'the write whose reply is lost to commit' },
      );
      // ...then Postgres unreachable from both workers for 2 s.
      expect(proxy.connections, 'no worker was connected when Postgres was cut').toBeGreaterThan(0);
      proxy.cut({ mode: 'reset' });
      await sleep(2_000);
      proxy.restore();

      const responses = await burst;
      expect(responses).toHaveLength(PAIRS * COPIES);
      await stack.queueDrained(40_000);

      const rows = await stack.payments();
      const payments: PaymentRecord[] = rows.map((row) => ({
        purchaseId: row.id,
        userId: row.user_id,
        productId: row.product_id,
        status: row.status,
        amount: row.amount,
      }));
      // The whole ledger: this stack's database has no other purchases.
      const ledger = (await stack.db('gateway_charges')) as GatewayChargeRow[];
      const charges: ChargeRecord[] = ledger.map((row) => ({ purchaseId: row.purchase_id, amount: row.amount }));
      expect(verifyBurst({ pairs, responses, payments, charges })).toEqual([]);
      expect(rows.filter((row) => row.status !== 'succeeded')).toEqual([]);
      expect((await stack.jobCounts()).failed).toBe(0);
      const accepted = responses.filter((response) => response.status === 202).map((response) => response.purchaseId!);
      await expectChargedOnceEach(stack.db, accepted, { nothingElse: true });
    });
  },
);
