import { createBatcher } from '../batching.js';
import type { Db } from '../db.js';
import { isFinal, type PaymentStatus, type Purchase } from '../purchase/purchase.js';
import type { PurchaseStatusEvent, PurchaseRef, PurchaseStateStore } from '../purchase/purchase-states.js';
import { PURCHASE_EVENTS_CHANNEL } from './names.js';

interface PurchaseStateRow {
  id: string;
  user_id: number;
  product_id: number;
  amount: number;
  accepted_at: Date;
  processing_at: Date | null;
  unrecorded_status: PaymentStatus | null;
  unrecorded_failure_reason: string | null;
  unrecorded_at: Date | null;
}

export interface PostgresPurchaseStateStoreOptions {
  db: Db;
  /** How long a purchase's claim lives after its outcome (IDEMPOTENCY_TTL_SECONDS). Default 300 s. */
  claimTtlSeconds?: number;
}

/** A finished purchase and the idempotency key it was accepted under. */
interface Finished {
  purchase: Purchase;
  idempotencyKey: string;
  inPostgres: boolean;
}

/**
 * The in-flight view of purchases on the Postgres backend: the `purchases` row the API wrote at
 * acceptance carries when a worker started it (`processing_at`) and an outcome `payments` could
 * not take (`unrecorded_*`). Changes are announced with NOTIFY on PURCHASE_EVENTS_CHANNEL, sent
 * by Postgres when the statement that marks the purchase processing, or that starts the key's
 * last TTL at its outcome, commits.
 */
export function createPostgresPurchaseStateStore(options: PostgresPurchaseStateStoreOptions): PurchaseStateStore {
  const { db, claimTtlSeconds = 300 } = options;

  const finder = createBatcher<string, Purchase | null>(async (ids) => {
    const rows = await db<PurchaseStateRow>('purchases')
      .whereIn('id', [...new Set(ids)])
      .select(
        'id',
        'user_id',
        'product_id',
        'amount',
        'accepted_at',
        'processing_at',
        'unrecorded_status',
        'unrecorded_failure_reason',
        'unrecorded_at',
      );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => {
      const row = byId.get(id);
      return row ? toPurchase(row) : null;
    });
  });

  const processingMarker = createBatcher<string, true>(async (ids) => {
    // One statement: mark the purchases not marked yet and announce those (only those) on commit.
    await db.raw(
      `with marked as (
         update purchases set processing_at = now()
         where id = any(?::uuid[]) and processing_at is null
         returning id
       )
       select pg_notify(?, json_build_object('purchaseId', id, 'status', 'processing')::text) from marked`,
      [[...new Set(ids)], PURCHASE_EVENTS_CHANNEL],
    );
    return ids.map(() => true as const);
  });

  const finisher = createBatcher<Finished, true>(async (finished) => {
    const unrecorded = finished.filter(({ inPostgres }) => !inPostgres).map(({ purchase }) => purchase);
    // One statement: keep what `payments` could not take, start each claim's last TTL (if the
    // claim is still the purchase's own and alive), and announce every outcome on commit.
    await db.raw(
      `with finished as (
         select * from unnest(?::uuid[], ?::text[], ?::text[]) as t(purchase_id, key, event)
       ),
       kept as (
         update purchases p
         set unrecorded_status = u.status, unrecorded_failure_reason = u.failure_reason, unrecorded_at = now()
         from unnest(?::uuid[], ?::text[], ?::text[]) as u(purchase_id, status, failure_reason)
         where p.id = u.purchase_id
       ),
       shortened as (
         update idempotency_claims c
         set expires_at = now() + make_interval(secs => ?)
         from finished f
         where c.key = f.key and c.purchase_id = f.purchase_id and c.expires_at > now()
       )
       select pg_notify(?, f.event) from finished f`,
      [
        finished.map(({ purchase }) => purchase.purchaseId),
        finished.map(({ idempotencyKey }) => idempotencyKey),
        finished.map(({ purchase }) =>
          JSON.stringify({ purchaseId: purchase.purchaseId, status: purchase.status } satisfies PurchaseStatusEvent),
        ),
        unrecorded.map((purchase) => purchase.purchaseId),
        unrecorded.map((purchase) => purchase.status),
        // pg sends null array elements as SQL NULL.
        unrecorded.map((purchase) => purchase.failureReason) as string[],
        claimTtlSeconds,
        PURCHASE_EVENTS_CHANNEL,
      ],
    );
    return finished.map(() => true as const);
  });

  return {
    getPurchaseState: ({ purchaseId }: PurchaseRef) => finder.load(purchaseId),

    async markProcessing({ purchaseId }: PurchaseRef) {
      await processingMarker.load(purchaseId);
    },

    async markFinished(purchase, { idempotencyKey, inPostgres = true }) {
      if (!isFinal(purchase.status)) throw new Error(`purchase ${purchase.purchaseId} is not finished`);
      await finisher.load({ purchase, idempotencyKey, inPostgres });
    },
  };
}

function toPurchase(row: PurchaseStateRow): Purchase {
  const base = {
    purchaseId: row.id,
    userId: row.user_id,
    productId: row.product_id,
    amount: row.amount,
    createdAt: row.accepted_at,
  };
  if (row.unrecorded_status) {
    return {
      ...base,
      status: row.unrecorded_status,
      failureReason: row.unrecorded_failure_reason,
      updatedAt: row.unrecorded_at ?? row.accepted_at,
    };
  }
  return row.processing_at
    ? { ...base, status: 'processing', failureReason: null, updatedAt: row.processing_at }
    : { ...base, status: 'queued', failureReason: null, updatedAt: row.accepted_at };
}
