import { createBatcher } from '../batching.js';
import type { Db } from '../db.js';
import { outboxCtes } from '../webhooks/outbox.js';
import type { Purchase, PurchaseJob } from './purchase.js';

interface AcceptedRow {
  id: string;
  account_id: number;
  user_id: number;
  product_id: number;
  amount: number;
  idempotency_key: string;
  accepted_at: Date;
  abandoned_at: Date | null;
}

/** A purchase job as the API makes it: always with its account. */
export type AccountPurchaseJob = PurchaseJob & { accountId: number };

/** An accepted purchase as Postgres alone knows it (`queued`), and the idempotency key it holds. */
export interface AcceptedPurchase {
  purchase: Purchase;
  idempotencyKey: string;
  /** The account it belongs to. */
  accountId: number;
}

/** An accepted purchase without a payment, for the reconciler. */
export interface UnpaidPurchase {
  job: PurchaseJob;
  /** Answered with anything but 202 (see `markAbandoned`). */
  abandoned: boolean;
}

/**
 * The `purchases` table: every accepted purchase, written before the API answers 202. The
 * outcome lives in `payments`; a purchase found here without a payment is still `queued` as far
 * as Postgres knows. Concurrent acceptances share one multi-row insert (`createBatcher`), so the
 * accept path pays one Postgres round trip per loop turn, not one per request.
 */
export function createPurchasesRepository({ db }: { db: Db }) {
  const recorder = createBatcher<AccountPurchaseJob, true>(async (jobs) => {
    // One statement with seven array parameters, whatever the batch's size: Postgres parses and
    // plans the same text every time, and no per-row SQL is built here. A purchase id is new for
    // every acceptance; a repeat is a retried write, already done. The same statement writes the
    // `purchase.accepted` events of accounts that subscribe to them (src/shared/webhooks/outbox.ts).
    await db.raw(
      `with inserted as (
         insert into purchases (id, account_id, user_id, product_id, amount, idempotency_key, accepted_at)
         select * from unnest(?::uuid[], ?::int[], ?::int[], ?::int[], ?::int[], ?::text[], ?::timestamptz[])
         on conflict (id) do nothing
         returning *
       ),
       accepted as (
         select 'purchase.accepted'::text as event_type, id, account_id, user_id, product_id, amount,
                'queued'::text as status, null::text as failure_reason, accepted_at, accepted_at as updated_at
         from inserted
       ),
       ${outboxCtes('accepted')}
       select 1`,
      [
        jobs.map((job) => job.purchaseId),
        jobs.map((job) => job.accountId),
        jobs.map((job) => job.userId),
        jobs.map((job) => job.productId),
        jobs.map((job) => job.amount),
        jobs.map((job) => job.idempotencyKey),
        jobs.map((job) => job.acceptedAt),
      ],
    );
    return jobs.map(() => true as const);
  });

  const finder = createBatcher<string, AcceptedPurchase | null>(async (ids) => {
    const rows = await db<AcceptedRow>('purchases').whereIn('id', [...new Set(ids)]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => {
      const row = byId.get(id);
      return row
        ? { purchase: toQueuedPurchase(row), idempotencyKey: row.idempotency_key, accountId: row.account_id }
        : null;
    });
  });

  return {
    /** Records an accepted purchase durably; resolves once Postgres has committed it. */
    async recordAccepted(job: AccountPurchaseJob): Promise<void> {
      await recorder.load(job);
    },

    /**
     * Purchases accepted from `acceptedFrom` up to `acceptedBefore` that have no payment yet,
     * oldest first, as the jobs that would run them (for the reconciler). The range keeps the
     * scan to the `accepted_at` index's recent end: older purchases are known to be paid.
     */
    async findUnpaid({
      acceptedFrom,
      acceptedBefore,
      limit,
    }: {
      acceptedFrom: Date;
      acceptedBefore: Date;
      limit: number;
    }): Promise<UnpaidPurchase[]> {
      const rows: AcceptedRow[] = await db('purchases as p')
        .leftJoin('payments as pay', 'pay.id', 'p.id')
        .whereNull('pay.id')
        .where('p.accepted_at', '>=', acceptedFrom)
        .where('p.accepted_at', '<', acceptedBefore)
        .orderBy('p.accepted_at')
        .limit(limit)
        .select('p.*');
      return rows.map((row) => ({
        job: {
          purchaseId: row.id,
          accountId: row.account_id,
          userId: row.user_id,
          productId: row.product_id,
          amount: row.amount,
          idempotencyKey: row.idempotency_key,
          acceptedAt: row.accepted_at.toISOString(),
        },
        abandoned: row.abandoned_at !== null,
      }));
    },

    /**
     * Marks an acceptance that was answered with anything but 202 (a 503 after its claim, or a
     * submission the queue folded into another purchase), so the reconciler drops it rather than
     * completes it.
     */
    async markAbandoned(purchaseId: string): Promise<void> {
      await db('purchases').where({ id: purchaseId }).update({ abandoned_at: db.fn.now() });
    },

    /** Drops an abandoned purchase that never ran (the reconciler). */
    async dropAbandoned(purchaseId: string): Promise<void> {
      await db('purchases').where({ id: purchaseId }).whereNotNull('abandoned_at').delete();
    },

    /** An accepted purchase as Postgres alone knows it (`queued`), or null if it was never accepted. */
    findAccepted(purchaseId: string): Promise<AcceptedPurchase | null> {
      return finder.load(purchaseId);
    },
  };
}

export type PurchasesRepository = ReturnType<typeof createPurchasesRepository>;

function toQueuedPurchase(row: AcceptedRow): Purchase {
  return {
    purchaseId: row.id,
    userId: row.user_id,
    productId: row.product_id,
    status: 'queued',
    amount: row.amount,
    failureReason: null,
    createdAt: row.accepted_at,
    updatedAt: row.accepted_at,
  };
}
