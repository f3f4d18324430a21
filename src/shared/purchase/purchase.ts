import { z } from 'zod';

/** Where a purchase is in its life: accepted and waiting, being charged, or finished. */
export const PURCHASE_STATUSES = ['queued', 'processing', 'succeeded', 'failed'] as const;
export type PurchaseStatus = (typeof PURCHASE_STATUSES)[number];

/** The final statuses; only these are ever written to the `payments` table. */
export type PaymentStatus = Extract<PurchaseStatus, 'succeeded' | 'failed'>;

/**
 * How long Redis and BullMQ keep what they alone know of a purchase: an in-flight record whose
 * job has not run yet, an outcome Postgres could not take, a failed job. One value, so that a
 * purchase's traces there vanish together.
 */
export const RETENTION_SECONDS = 7 * 24 * 3600;

/** Machine-readable reasons a purchase ended `failed`. */
export const FAILURE_REASONS = {
  CARD_DECLINED: 'card_declined',
  /** The transient-failure retry budget was spent (for example Postgres down too long). */
  RETRIES_EXHAUSTED: 'retries_exhausted',
  /** The user or product was deleted between acceptance and payment. */
  REFERENCE_GONE: 'user_or_product_gone',
  /**
   * Never charged: its acceptance was answered 503 (its job never ran) and the client's retry
   * under the same idempotency key was accepted as another purchase, which is the one charged.
   */
  SUPERSEDED: 'superseded_by_retry',
} as const;

/** A purchase as clients see it. */
export interface Purchase {
  purchaseId: string;
  userId: number;
  productId: number;
  status: PurchaseStatus;
  /** Price in cents, fixed when the purchase was accepted. */
  amount: number;
  failureReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a queue message carries: identifiers and the amount, never secrets. */
export const PurchaseJobSchema = z.object({
  purchaseId: z.uuid(),
  /** The account the purchase belongs to. Absent only on jobs enqueued before accounts existed. */
  accountId: z.number().int().positive().optional(),
  userId: z.number().int().positive(),
  productId: z.number().int().positive(),
  amount: z.number().int().nonnegative(),
  idempotencyKey: z.string().min(1),
  acceptedAt: z.iso.datetime(),
});
export type PurchaseJob = z.infer<typeof PurchaseJobSchema>;

export function isFinal(status: PurchaseStatus): status is PaymentStatus {
  return status === 'succeeded' || status === 'failed';
}
