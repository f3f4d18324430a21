import type { Purchase, PurchaseStatus } from '../../src/shared/purchase/purchase.js';

/** A purchase as the status read gives it, with fixed fields but its id and status (unit tests). */
export const purchaseWith = (purchaseId: string, status: PurchaseStatus): Purchase => ({
  purchaseId,
  userId: 1,
  productId: 2,
  status,
  amount: 500,
  failureReason: null,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});
