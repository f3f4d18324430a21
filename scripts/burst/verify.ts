/**
 * The burst simulator's verdict, kept free of I/O so it can be tested on planted faults:
 * given what every request got back and what Postgres holds, list every violation of
 * "nothing charged twice, nothing lost".
 */

/** One purchase the simulator meant to make: a (user, product) pair, sent several times. */
export interface BurstPair {
  userId: number;
  productId: number;
}

/** What one request got back. */
export interface BurstResponse {
  pair: number;
  status: number;
  /** From a 202/200 body, or the `Location` of a 204. */
  purchaseId: string | null;
}

/** A row of the `payments` table for one of the simulator's users. */
export interface PaymentRecord {
  purchaseId: string;
  userId: number;
  productId: number;
  status: string;
}

export interface Violation {
  kind:
    | 'charged_twice'
    | 'lost_payment'
    | 'payment_without_acceptance'
    | 'not_accepted'
    | 'accepted_twice'
    | 'duplicate_points_elsewhere'
    | 'server_error'
    | 'unfinished';
  detail: string;
}

const FINAL = new Set(['succeeded', 'failed']);

export function verifyBurst(input: {
  pairs: BurstPair[];
  responses: BurstResponse[];
  payments: PaymentRecord[];
}): Violation[] {
  const violations: Violation[] = [];
  const { pairs, responses, payments } = input;

  const acceptedByPair = new Map<number, Set<string>>();
  for (const response of responses) {
    if (response.status >= 500) {
      violations.push({ kind: 'server_error', detail: `pair ${response.pair} got HTTP ${response.status}` });
    }
    if ((response.status === 200 || response.status === 202) && response.purchaseId) {
      const set = acceptedByPair.get(response.pair) ?? new Set<string>();
      set.add(response.purchaseId);
      acceptedByPair.set(response.pair, set);
    }
  }

  const acceptedIds = new Map<string, number>();
  pairs.forEach((pair, index) => {
    const accepted = acceptedByPair.get(index) ?? new Set<string>();
    if (accepted.size === 0) {
      violations.push({
        kind: 'not_accepted',
        detail: `pair ${index} (user ${pair.userId}, product ${pair.productId}) was never accepted`,
      });
    }
    if (accepted.size > 1) {
      violations.push({ kind: 'accepted_twice', detail: `pair ${index} was accepted as ${[...accepted].join(', ')}` });
    }
    for (const id of accepted) acceptedIds.set(id, index);
  });

  for (const response of responses) {
    if (response.status !== 204) continue;
    const original = response.purchaseId;
    if (!original || acceptedIds.get(original) !== response.pair) {
      violations.push({
        kind: 'duplicate_points_elsewhere',
        detail: `a duplicate of pair ${response.pair} points at ${original ?? 'nothing'}`,
      });
    }
  }

  const rowsById = new Map<string, PaymentRecord[]>();
  const rowsByPair = new Map<string, PaymentRecord[]>();
  for (const row of payments) {
    rowsById.set(row.purchaseId, [...(rowsById.get(row.purchaseId) ?? []), row]);
    const pairKey = `${row.userId}/${row.productId}`;
    rowsByPair.set(pairKey, [...(rowsByPair.get(pairKey) ?? []), row]);
  }
  for (const [pairKey, rows] of rowsByPair) {
    if (rows.length > 1) {
      violations.push({
        kind: 'charged_twice',
        detail: `user/product ${pairKey} has ${rows.length} payments: ${rows.map((row) => row.purchaseId).join(', ')}`,
      });
    }
  }
  for (const [id, pairIndex] of acceptedIds) {
    const rows = rowsById.get(id) ?? [];
    if (rows.length === 0) {
      violations.push({ kind: 'lost_payment', detail: `accepted purchase ${id} (pair ${pairIndex}) has no payment` });
    } else if (!FINAL.has(rows[0]!.status)) {
      violations.push({ kind: 'unfinished', detail: `purchase ${id} is ${rows[0]!.status}` });
    }
  }
  for (const row of payments) {
    if (!acceptedIds.has(row.purchaseId)) {
      violations.push({
        kind: 'payment_without_acceptance',
        detail: `payment ${row.purchaseId} was never accepted by the API`,
      });
    }
  }
  return violations;
}
