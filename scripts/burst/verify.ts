/**
 * The burst simulator's verdict, kept free of I/O so it can be tested on planted faults:
 * given what every request got back, what Postgres holds and what the payment gateway charged,
 * list every violation of "nothing charged twice, nothing lost".
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
  amount: number;
}

/** A charge in the payment gateway's ledger (`gateway_charges`), for one of the simulator's purchases. */
export interface ChargeRecord {
  purchaseId: string;
  amount: number;
}

export interface Violation {
  kind:
    | 'charged_twice'
    | 'charged_without_payment'
    | 'charged_wrong_amount'
    | 'payment_not_charged'
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
  /** The gateway's charges for every purchase the run knows of (accepted, pointed at, or paid). */
  charges: ChargeRecord[];
}): Violation[] {
  const violations: Violation[] = [];
  const { pairs, responses, payments, charges } = input;

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
  violations.push(...verifyCharges(pairs, acceptedIds, rowsById, charges));
  return violations;
}

/**
 * Where the money moves: one gateway charge per succeeded payment, for its amount, none for a
 * failed or missing payment, and no (user, product) pair charged twice. `payments` has one row
 * per purchase by its primary key whatever the gateway was asked, so only this shows a second
 * charge of a purchase.
 */
function verifyCharges(
  pairs: BurstPair[],
  acceptedIds: ReadonlyMap<string, number>,
  rowsById: ReadonlyMap<string, PaymentRecord[]>,
  charges: ChargeRecord[],
): Violation[] {
  const violations: Violation[] = [];
  const chargesByPair = new Map<string, ChargeRecord[]>();
  const charged = new Set<string>();
  for (const charge of charges) {
    charged.add(charge.purchaseId);
    const payment = rowsById.get(charge.purchaseId)?.[0];
    const pair = payment ?? pairs[acceptedIds.get(charge.purchaseId) ?? -1];
    if (pair) {
      const pairKey = `${pair.userId}/${pair.productId}`;
      chargesByPair.set(pairKey, [...(chargesByPair.get(pairKey) ?? []), charge]);
    }
    if (payment?.status !== 'succeeded') {
      violations.push({
        kind: 'charged_without_payment',
        detail: `the gateway charged ${charge.purchaseId}, whose payment is ${payment?.status ?? 'missing'}`,
      });
    } else if (payment.amount !== charge.amount) {
      violations.push({
        kind: 'charged_wrong_amount',
        detail: `the gateway charged ${charge.amount} for ${charge.purchaseId}, paid at ${payment.amount}`,
      });
    }
  }
  for (const [pairKey, pairCharges] of chargesByPair) {
    if (pairCharges.length > 1) {
      violations.push({
        kind: 'charged_twice',
        detail: `user/product ${pairKey} was charged ${pairCharges.length} times at the gateway: ${pairCharges.map((charge) => charge.purchaseId).join(', ')}`,
      });
    }
  }
  for (const [id, rows] of rowsById) {
    if (rows[0]!.status === 'succeeded' && !charged.has(id)) {
      violations.push({ kind: 'payment_not_charged', detail: `payment ${id} succeeded without a gateway charge` });
    }
  }
  return violations;
}
