import { createBatcher } from '../batching.js';
import type { Db } from '../db.js';
import { dropHeldEventsCtes, outboxCtes, releaseHeldEventsCte } from '../webhooks/outbox.js';
import type { PaymentStatus, Purchase, PurchaseJob } from './purchase.js';

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

/** What recording an acceptance wrote besides the purchase. */
export interface RecordedAcceptance {
  /** A held `purchase.accepted` event, for an account with an endpoint subscribed to it. */
  heldEvent: boolean;
}

/** An accepted purchase's row with its payment's outcome, if it has one (`listAccepted`). */
interface ListedRow extends AcceptedRow {
  payment_status: PaymentStatus | null;
  payment_failure_reason: string | null;
  payment_updated_at: Date | null;
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

/** An accepted purchase and its payment, if it has one (the listing). */
export interface ListedPurchase {
  accepted: AcceptedPurchase;
  /** The finished purchase as `payments` holds it; null while it has no payment. */
  payment: Purchase | null;
}

/** Which of an account's purchases `listAccepted` gives, and from where. */
export interface AcceptedListQuery {
  accountId: number;
  /** Only this user's. */
  userId?: number | undefined;
  /** Only those listed after this one: accepted earlier, or at the same time with a smaller id. */
  after?: { acceptedAt: Date; purchaseId: string } | undefined;
  /**
   * Only those whose payment has one of these statuses, `null` standing for no payment yet.
   * Default: every purchase.
   */
  paymentStatuses?: ReadonlyArray<PaymentStatus | null> | undefined;
  limit: number;
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
  const recorder = createBatcher<AccountPurchaseJob, RecordedAcceptance>(async (jobs) => {
    // One statement with seven array parameters, whatever the batch's size: Postgres parses and
    // plans the same text every time, and no per-row SQL is built here. A purchase id is new for
    // every acceptance; a repeat is a retried write, already done. The same statement writes the
    // `purchase.accepted` events of accounts that subscribe to them, held until the purchase is
    // queued (src/shared/webhooks/outbox.ts), and returns the purchases it wrote one for.
    const { rows } = await db.raw<{ rows: Array<{ purchase_id: string }> }>(
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
       ${outboxCtes('accepted', { held: true })}
       select purchase_id from outbox_events`,
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
    const held = new Set(rows.map((row) => row.purchase_id));
    return jobs.map((job) => ({ heldEvent: held.has(job.purchaseId) }));
  });

  const finder = createBatcher<string, AcceptedPurchase | null>(async (ids) => {
    const rows = await db<AcceptedRow>('purchases').whereIn('id', [...new Set(ids)]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => {
      const row = byId.get(id);
      return row ? toAccepted(row) : null;
    });
  });

  return {
    /**
     * Records an accepted purchase durably; resolves once Postgres has committed it, saying
     * whether a `purchase.accepted` event was written for it (held: see `releaseAcceptedEvent`).
     */
    recordAccepted(job: AccountPurchaseJob): Promise<RecordedAcceptance> {
      return recorder.load(job);
    },

    /**
     * Lets a purchase's held `purchase.accepted` event go to its endpoints, once the purchase is
     * queued. Its outcome's write does the same, so a release that fails only delays the event.
     */
    async releaseAcceptedEvent(purchaseId: string): Promise<void> {
      await db.raw(
        `with target as (select ?::uuid as id),
         ${releaseHeldEventsCte('target')}
         select 1`,
        [purchaseId],
      );
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

    /**
     * Marks a purchase the queue is known to hold (a later submission was folded into it and
     * answered 204 pointing at it): a client now knows of it, so it is no longer abandoned,
     * whatever its own submission was answered (the reconciler runs it again should its job be
     * lost, rather than drop it), and its held `purchase.accepted` event goes out.
     */
    async markQueued(purchaseId: string): Promise<void> {
      await db.raw(
        `with kept as (
           update purchases set abandoned_at = null where id = ? and abandoned_at is not null returning 1
         ),
         target as (select ?::uuid as id),
         ${releaseHeldEventsCte('target')}
         select 1`,
        [purchaseId, purchaseId],
      );
    },

    /**
     * Drops an abandoned purchase that never ran (the reconciler), with its held
     * `purchase.accepted` event: no endpoint ever hears of it.
     */
    async dropAbandoned(purchaseId: string): Promise<void> {
      await db.raw(
        `with dropped as (
           delete from purchases where id = ? and abandoned_at is not null returning id
         ),
         ${dropHeldEventsCtes('dropped')}
         select 1`,
        [purchaseId],
      );
    },

    /**
     * An account's purchases, newest first (`accepted_at`, then `id`, both descending: the
     * `(account_id, accepted_at)` index), each with its payment if it has one. Abandoned
     * acceptances are left out unless a payment shows that their job did run (an enqueue whose
     * reply was lost: the client's retry was answered 204 pointing at that purchase).
     */
    async listAccepted(query: AcceptedListQuery): Promise<ListedPurchase[]> {
      const { accountId, userId, after, paymentStatuses, limit } = query;
      const statuses = paymentStatuses?.filter((status) => status !== null) ?? [];
      const rows: ListedRow[] = await db('purchases as p')
        .leftJoin('payments as pay', 'pay.id', 'p.id')
        .where('p.account_id', accountId)
        .where((where) => void where.whereNull('p.abandoned_at').orWhereNotNull('pay.id'))
        .modify((builder) => {
          if (userId !== undefined) builder.where('p.user_id', userId);
          if (after) {
            builder.whereRaw('(p.accepted_at, p.id) < (?, ?::uuid)', [after.acceptedAt, after.purchaseId]);
          }
          if (paymentStatuses) {
            builder.where((where) => {
              if (statuses.length > 0) where.whereIn('pay.status', statuses);
              if (paymentStatuses.includes(null)) where.orWhereNull('pay.id');
            });
          }
        })
        .orderBy([
          { column: 'p.accepted_at', order: 'desc' },
          { column: 'p.id', order: 'desc' },
        ])
        .limit(limit)
        .select(
          'p.*',
          'pay.status as payment_status',
          'pay.failure_reason as payment_failure_reason',
          'pay.updated_at as payment_updated_at',
        );
      return rows.map((row) => {
        const accepted = toAccepted(row);
        return {
          accepted,
          payment:
            row.payment_status === null
              ? null
              : {
                  ...accepted.purchase,
                  status: row.payment_status,
                  failureReason: row.payment_failure_reason,
                  updatedAt: row.payment_updated_at ?? row.accepted_at,
                },
        };
      });
    },

    /** An accepted purchase as Postgres alone knows it (`queued`), or null if it was never accepted. */
    findAccepted(purchaseId: string): Promise<AcceptedPurchase | null> {
      return finder.load(purchaseId);
    },
  };
}

export type PurchasesRepository = ReturnType<typeof createPurchasesRepository>;

function toAccepted(row: AcceptedRow): AcceptedPurchase {
  return { purchase: toQueuedPurchase(row), idempotencyKey: row.idempotency_key, accountId: row.account_id };
}

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
