import type { Db } from '../db.js';
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

/** The `payments` table: one row per finished purchase, keyed by the purchase id. */
export function createPaymentsRepository({ db }: { db: Db }) {
  return {
    async findPayment(purchaseId: string): Promise<Purchase | null> {
      const row = await db<PaymentRow>('payments').where({ id: purchaseId }).first();
      return row ? toPurchase(row) : null;
    },

    /**
     * Writes the outcome of a purchase exactly once. The insert and the conflict check are one
     * statement on the primary key, so a job run twice, or by two workers at once, leaves one
     * row: the first outcome written wins and is returned to every caller.
     */
    async recordPayment(job: PurchaseJob, outcome: PaymentOutcome): Promise<Purchase> {
      const inserted = await db<PaymentRow>('payments')
        .insert({
          id: job.purchaseId,
          user_id: job.userId,
          product_id: job.productId,
          amount: job.amount,
          status: outcome.status,
          failure_reason: outcome.failureReason,
          idempotency_key: job.idempotencyKey,
          accepted_at: new Date(job.acceptedAt),
        })
        .onConflict('id')
        .ignore()
        .returning('*');
      const row = inserted[0] ?? (await db<PaymentRow>('payments').where({ id: job.purchaseId }).first());
      if (!row) throw new Error(`payment ${job.purchaseId} neither inserted nor found`);
      return toPurchase(row as PaymentRow);
    },
  };
}

export type PaymentsRepository = ReturnType<typeof createPaymentsRepository>;
