import { createBatcher } from '../batching.js';
import type { Db } from '../db.js';
import { outboxCtes, releaseHeldEventsCte } from '../webhooks/outbox.js';
import type { PaymentStatus, Purchase, PurchaseJob } from './purchase.js';

interface PaymentRow {
  id: string;
  user_id: number;
  product_id: number;
  amount: number;
  status: PaymentStatus;
  failure_reason: string | null;
  idempotency_key: string;
  accepted_at: Date;
  created_at: Date;
  updated_at: Date;
}

export interface PaymentOutcome {
  status: PaymentStatus;
  failureReason: string | null;
}

const toPurchase = (row: PaymentRow): Purchase => ({
  purchaseId: row.id,
  userId: row.user_id,
  productId: row.product_id,
  status: row.status,
  amount: row.amount,
  failureReason: row.failure_reason,
  // A purchase's createdAt is when it was accepted, not when its payment row was written.
  createdAt: row.accepted_at,
  updatedAt: row.updated_at,
});

/** Postgres's error code for a row whose user or product does not exist. */
const FOREIGN_KEY_VIOLATION = '23503';
const isForeignKeyViolation = (error: unknown) => (error as { code?: string }).code === FOREIGN_KEY_VIOLATION;

/** A payment that cannot be written because its user or product was deleted after acceptance. */
export class ReferenceGoneError extends Error {
  override readonly name = 'ReferenceGoneError';
  constructor(cause: unknown) {
    super("the purchase's user or product no longer exists", { cause });
  }
}
const referenceGoneIfForeignKey = (error: unknown) =>
  isForeignKeyViolation(error) ? new ReferenceGoneError(error) : error;

/**
 * The `payments` table: one row per finished purchase, keyed by the purchase id. Concurrent
 * reads and writes are coalesced into multi-row statements (`createBatcher`), so a worker
 * running many jobs at once writes them in a few statements instead of one round trip each;
 * each call still gets exactly its own answer or error.
 */
export function createPaymentsRepository({ db }: { db: Db }) {
  const selectByIds = async (ids: readonly string[]) => {
    const rows = (await db('payments').whereIn('id', [...new Set(ids)])) as PaymentRow[];
    return new Map(rows.map((row) => [row.id, row]));
  };

  const finder = createBatcher<string, Purchase | null>(async (ids) => {
    const rows = await selectByIds(ids);
    return ids.map((id) => {
      const row = rows.get(id);
      return row ? toPurchase(row) : null;
    });
  });

  /**
   * Inserts the outcomes, skipping purchases already written, and returns each purchase's row.
   * The insert and the conflict check are one statement on the primary key, so a job run twice,
   * or by two workers at once, leaves one row: the first outcome written wins and is returned
   * to every caller. The same statement writes the webhook events of the rows it inserted
   * (src/shared/webhooks/outbox.ts): an outcome and its event exist together or not at all. It
   * also releases the purchase's held `purchase.accepted` event, should the API not have.
   */
  async function insertOutcomes(entries: ReadonlyArray<{ job: PurchaseJob; outcome: PaymentOutcome }>) {
    const { rows: inserted } = await db.raw<{ rows: PaymentRow[] }>(
      `with inserted as (
         insert into payments (id, user_id, product_id, amount, status, failure_reason, idempotency_key, accepted_at)
         select * from unnest(?::uuid[], ?::int[], ?::int[], ?::int[], ?::text[], ?::text[], ?::text[], ?::timestamptz[])
         on conflict (id) do nothing
         returning *
       ),
       outcomes as (
         select 'purchase.' || i.status as event_type, i.id, p.account_id, i.user_id, i.product_id, i.amount,
                i.status, i.failure_reason, i.accepted_at, i.updated_at
         from inserted i left join purchases p on p.id = i.id
       ),
       ${outboxCtes('outcomes')},
       ${releaseHeldEventsCte('inserted')}
       select * from inserted`,
      [
        entries.map(({ job }) => job.purchaseId),
        entries.map(({ job }) => job.userId),
        entries.map(({ job }) => job.productId),
        entries.map(({ job }) => job.amount),
        entries.map(({ outcome }) => outcome.status),
        // pg sends null array elements as SQL NULL.
        entries.map(({ outcome }) => outcome.failureReason) as string[],
        entries.map(({ job }) => job.idempotencyKey),
        entries.map(({ job }) => job.acceptedAt),
      ],
    );
    const rows = new Map(inserted.map((row) => [row.id, row]));
    const missing = entries.map(({ job }) => job.purchaseId).filter((id) => !rows.has(id));
    if (missing.length > 0) for (const [id, row] of await selectByIds(missing)) rows.set(id, row);
    return entries.map(({ job }) => {
      const row = rows.get(job.purchaseId);
      return row ? toPurchase(row) : new Error(`payment ${job.purchaseId} neither inserted nor found`);
    });
  }

  const writer = createBatcher<{ job: PurchaseJob; outcome: PaymentOutcome }, Purchase>(async (entries) => {
    try {
      return await insertOutcomes(entries);
    } catch (error) {
      // One row with a vanished user or product fails the whole statement: write the batch
      // row by row so only that purchase gets the error.
      if (!isForeignKeyViolation(error) || entries.length === 1) throw referenceGoneIfForeignKey(error);
      return Promise.all(
        entries.map((entry) =>
          insertOutcomes([entry]).then(
            ([result]) => result!,
            (single: unknown) => referenceGoneIfForeignKey(single) as Error,
          ),
        ),
      );
    }
  });

  return {
    findPayment(purchaseId: string): Promise<Purchase | null> {
      return finder.load(purchaseId);
    },

    /** Writes the outcome of a purchase exactly once and returns the row that stands. */
    recordPayment(job: PurchaseJob, outcome: PaymentOutcome): Promise<Purchase> {
      return writer.load({ job, outcome });
    },
  };
}

export type PaymentsRepository = ReturnType<typeof createPaymentsRepository>;
