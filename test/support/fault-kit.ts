import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { Db } from '../../src/shared/db.js';
import type { PurchaseClient, PurchaseHeaders, PurchaseStatus, PurchaseView } from './purchase-client.js';
import { purchaseIdIn } from './purchase-client.js';
import type { PaymentRow, ProcessStack } from './process-stack.js';
import type { RunningProcess } from './processes.js';
import { eventually } from './services.js';

/**
 * For the API in these tests: they are about faults, not about the API's bound on a Redis
 * command (default 500 ms). On a loaded 2-core machine a process can be descheduled for that
 * long, and a reply that arrived in time then counts as a timeout (a spurious 503). A refused
 * or closed Redis connection still fails at once, whatever this says.
 */
export const PATIENT_API = { REDIS_COMMAND_TIMEOUT_MS: '5000' } as const;

/** Worker settings that let another worker take over a dead one's jobs within about a second. */
export const FAST_STALL_RECOVERY = { STALLED_INTERVAL_MS: '500', LOCK_DURATION_MS: '1000' } as const;

/** Runs `work` over `items` with at most `concurrency` calls in flight; results in input order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let index = next++; index < items.length; index = next++) {
        results[index] = await work(items[index]!, index);
      }
    }),
  );
  return results;
}

/** How a client's purchase ended after it retried the 503s it was given. */
export interface Submission {
  /** 'accepted': a 202, or a 204 after a 503 (the queue had taken the job of the refused try). */
  outcome: 'accepted' | 'duplicate';
  purchaseId: string;
  /** 503s the client got (and retried) first. */
  unavailable: number;
}

/**
 * Submits a purchase as the README tells clients to: a 503 is retried after a moment. If an
 * earlier try's enqueue reached the queue but timed out (the API then answers 503 and releases
 * the claim), the retry is collapsed into that job and answered 204 pointing at it: for this
 * client that is its accepted purchase. Anything but 202, 204 or 503 fails the test.
 */
export async function submitPurchase(
  client: PurchaseClient,
  body: { userId: number; productId: number },
  headers: PurchaseHeaders = {},
): Promise<Submission> {
  const deadline = Date.now() + 15_000;
  for (let unavailable = 0; ; unavailable++) {
    const result = await client.purchase(body, headers);
    if (result.status === 503 && Date.now() < deadline) {
      await sleep(200);
      continue;
    }
    expect([202, 204], JSON.stringify(result.body)).toContain(result.status);
    const purchaseId = purchaseIdIn(result.headers.get('location'));
    return { outcome: result.status === 202 || unavailable > 0 ? 'accepted' : 'duplicate', purchaseId, unavailable };
  }
}

/** Submits each purchase (retrying 503s), expects each to be accepted, returns the purchase ids. */
export async function acceptPurchases(
  client: PurchaseClient,
  bodies: readonly { userId: number; productId: number }[],
): Promise<string[]> {
  return mapBounded(bodies, 20, async (body) => {
    const submission = await submitPurchase(client, body);
    expect(submission.outcome, `${JSON.stringify(body)} was taken for a duplicate`).toBe('accepted');
    return submission.purchaseId;
  });
}

/**
 * Waits until `process` has logged what `seen` looks for. Logs are written asynchronously and
 * read through a pipe, so a line can trail the event it reports by a moment.
 */
export async function logged(
  process: RunningProcess,
  seen: (output: string) => boolean,
  what: string,
): Promise<string> {
  return eventually(() => (seen(process.output()) ? process.output() : undefined), { timeoutMs: 5_000, what });
}

/** The status of each purchase as GET answers it (`null` when it is not a 200). */
export async function statusesOf(client: PurchaseClient, ids: readonly string[]): Promise<(PurchaseView | null)[]> {
  return mapBounded(ids, 20, async (id) => {
    const result = await client.getPurchase(id);
    return result.status === 200 ? (result.body as unknown as PurchaseView) : null;
  });
}

/** Waits until every purchase in `ids` answers with one of `statuses`, and returns the views. */
export async function allReach(
  client: PurchaseClient,
  ids: readonly string[],
  statuses: readonly PurchaseStatus[],
  { timeoutMs = 20_000, what = `${ids.length} purchases to reach ${statuses.join('/')}` } = {},
): Promise<PurchaseView[]> {
  return eventually(
    async () => {
      const views = await statusesOf(client, ids);
      const pending = views.filter((view) => !view || !statuses.includes(view.status));
      if (pending.length === 0) return views as PurchaseView[];
      // Thrown, not returned, so a timeout says what was last seen.
      throw new Error(`not yet: ${JSON.stringify(pending.slice(0, 3))} (${pending.length} of ${ids.length})`);
    },
    { timeoutMs, intervalMs: 100, what },
  );
}

/** Waits until exactly `count` of `ids` are `processing` (held by a worker); returns those. */
export async function processingCount(
  client: PurchaseClient,
  ids: readonly string[],
  count: number,
  timeoutMs = 5_000,
): Promise<string[]> {
  return eventually(
    async () => {
      const views = await statusesOf(client, ids);
      const processing = views.filter((view) => view?.status === 'processing').map((view) => view!.purchaseId);
      return processing.length === count ? processing : undefined;
    },
    { timeoutMs, what: `${count} purchases to be processing` },
  );
}

/**
 * The exactly-once verdict from Postgres: `payments` holds exactly one row per purchase in
 * `ids`, matching `expected`, and no row for anything else. Unless `distinctPairs` is false
 * (purchases told apart by Idempotency-Key), no (user, product) pair is paid twice either.
 */
export async function expectOnePaymentEach(
  stack: ProcessStack,
  ids: readonly string[],
  expected: Partial<PaymentRow> = { status: 'succeeded' },
  { distinctPairs = true } = {},
): Promise<PaymentRow[]> {
  const rows = await stack.payments();
  expect(rows.map((row) => row.id).sort()).toEqual([...ids].sort());
  if (distinctPairs) {
    const pairs = new Set(rows.map((row) => `${row.user_id}/${row.product_id}`));
    expect(pairs.size, 'a (user, product) pair was paid more than once').toBe(rows.length);
  }
  for (const row of rows) expect(row).toMatchObject(expected);
  return rows;
}

/** A row of the simulated gateway's ledger: one approved charge. */
export interface GatewayChargeRow {
  idempotency_key: string;
  purchase_id: string;
  amount: number;
  charged_at: Date;
}

/**
 * The exactly-once verdict at the payment provider: the simulated gateway's ledger
 * (`gateway_charges`) holds exactly one charge for each of `purchaseIds` whose payment
 * succeeded, for its amount, and none for a failed purchase or one without a payment. Counted
 * where the money moves, not in `payments` (whose primary key keeps it at one row whatever was
 * charged). `db` is the database the gateway's ledger is in (by default the workers' own). With
 * `nothingElse`, the ledger may hold no other charge either (for a test's database of its own).
 */
export async function expectChargedOnceEach(
  db: Db,
  purchaseIds: readonly string[],
  { nothingElse = false } = {},
): Promise<GatewayChargeRow[]> {
  const ids = [...new Set(purchaseIds)];
  const payments = (await db('payments').whereIn('id', ids).select('id', 'status', 'amount')) as Array<
    Pick<PaymentRow, 'id' | 'status' | 'amount'>
  >;
  const charges = (await db('gateway_charges').whereIn('purchase_id', ids)) as GatewayChargeRow[];
  const chargesOf = (id: string) => charges.filter((charge) => charge.purchase_id === id);
  const outcome = new Map(payments.map((payment) => [payment.id, payment]));
  // One expectation over every purchase, so a failure shows each one's payment and charges.
  const seen = ids.map((id) => ({
    id,
    payment: outcome.get(id)?.status ?? 'none',
    charged: chargesOf(id).map((charge) => charge.amount),
  }));
  const wanted = ids.map((id) => {
    const payment = outcome.get(id);
    return { id, payment: payment?.status ?? 'none', charged: payment?.status === 'succeeded' ? [payment.amount] : [] };
  });
  expect(seen).toEqual(wanted);
  const sum = (amounts: number[]) => amounts.reduce((total, amount) => total + amount, 0);
  const succeeded = payments.filter((payment) => payment.status === 'succeeded');
  expect(sum(charges.map((charge) => charge.amount))).toBe(sum(succeeded.map((payment) => payment.amount)));
  if (nothingElse) {
    const others = (await db('gateway_charges').whereNotIn('purchase_id', ids)) as GatewayChargeRow[];
    expect(others, 'charges for purchases other than these').toEqual([]);
  }
  return charges;
}

/** Ids of the purchases a worker's log says it finished (its `purchase finished` lines). */
export function finishedIn(output: string): Set<string> {
  const ids = new Set<string>();
  for (const line of output.split('\n')) {
    if (!line.includes('"purchase finished"')) continue;
    const match = /"purchaseId":"([0-9a-f-]{36})"/.exec(line);
    if (match) ids.add(match[1]!);
  }
  return ids;
}

/** What `npm run reconcile` printed (its one JSON line). */
export interface ReconcileOutput {
  requeued: string[];
  superseded: string[];
  dropped: string[];
  alive: number;
  errors: number;
}

/** Runs `npm run reconcile -- --after 0` (the built script) with the stack's environment, as an operator would. */
export async function runReconcile(stack: ProcessStack): Promise<ReconcileOutput> {
  const { stdout } = await promisify(execFile)(process.execPath, ['dist/scripts/reconcile.js', '--after', '0'], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env: { ...process.env, ...stack.env(), LOG_PRETTY: 'false' },
  });
  return JSON.parse(stdout) as ReconcileOutput;
}
