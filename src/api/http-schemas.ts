import { z } from 'zod';
import { PURCHASE_STATUSES, type Purchase } from '../shared/purchase/purchase.js';

/** Every error answer has this shape; `code` is stable and documented. */
export const ErrorResponse = z.object({
  statusCode: z.number().int(),
  code: z.string(),
  error: z.string(),
  message: z.string(),
});

/** The error statuses a route can answer with, for its response schema. */
export function errorResponses<const S extends readonly number[]>(...statuses: S) {
  return Object.fromEntries(statuses.map((status) => [status, ErrorResponse])) as {
    [K in S[number]]: typeof ErrorResponse;
  };
}

/** Database ids: positive 32-bit integers, strictly typed (no "1" strings, no 1.5). */
export const Id = z.number().int().positive().max(2_147_483_647);

/** The body of `POST /payment/purchase`: two ids, nothing else. */
export const PurchaseBody = z.strictObject({ userId: Id, productId: Id });

/** The headers `POST /payment/purchase` reads; others pass through untouched. */
export const PurchaseHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
    .optional()
    .describe('`Idempotency-Key`: a repeat answers 204 with the original `Location` (422 if its body differs)'),
  prefer: z.string().optional().describe('`Prefer: wait=N` (RFC 7240): wait up to N seconds for the outcome'),
});

export const PurchaseView = z.object({
  purchaseId: z.uuid(),
  userId: Id,
  productId: Id,
  status: z.enum(PURCHASE_STATUSES),
  amount: z.number().int().nonnegative(),
  failureReason: z.string().nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});

export const toPurchaseView = (purchase: Purchase): z.infer<typeof PurchaseView> => ({
  ...purchase,
  createdAt: purchase.createdAt.toISOString(),
  updatedAt: purchase.updatedAt.toISOString(),
});

/** List endpoints: `?limit=` from 1 to 1000, default 100. */
export const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** A uuid, lower-cased: Postgres compares uuids case-insensitively, Redis keys do not. */
export const LowercaseUuid = z.uuid().transform((id) => id.toLowerCase());

/** `GET /payment/purchase`: an account's purchases, newest first, a page at a time (Stripe's shape). */
export const PurchaseListQuery = z.strictObject({
  // Id's bounds, coerced from the query string (a pipe into Id would document a plain number).
  userId: z.coerce.number().int().positive().max(2_147_483_647).optional().describe("Only this user's purchases"),
  status: z.enum(PURCHASE_STATUSES).optional().describe('Only purchases with this status, as a status read gives it'),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('Purchases per page, 1-100'),
  starting_after: LowercaseUuid.optional().describe(
    "The previous page's `next_starting_after` (its last purchase's id): the page after it",
  ),
});

export const PurchaseList = z.object({
  data: z.array(PurchaseView),
  has_more: z.boolean(),
  next_starting_after: z.uuid().nullable(),
});
