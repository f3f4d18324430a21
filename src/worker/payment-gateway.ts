import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBatcher } from '../shared/batching.js';
import type { Config } from '../shared/config.js';
import { createDb, type Db } from '../shared/db.js';
import { FAILURE_REASONS } from '../shared/purchase/purchase.js';

export type ChargeResult = { approved: true } | { approved: false; reason: string };

/**
 * The payment provider. `purchaseId` is sent as the provider-side idempotency key: a real
 * provider (Stripe, Adyen, ...) answers a repeated key with the original result instead of
 * charging again, which is what makes a retry after a failed database write safe.
 */
export interface PaymentGateway {
  charge(request: { purchaseId: string; amount: number }): Promise<ChargeResult>;
}

/** Connections the simulated gateway's pool opens at most; its charges are batched (see below). */
const GATEWAY_POOL_MAX = 4;

/** The largest amount the ledger takes (its `amount` column is a Postgres integer). */
const MAX_AMOUNT = 2 ** 31 - 1;

/**
 * The simulated gateway's database: GATEWAY_DATABASE_URL, default DATABASE_URL, over a pool of
 * its own. It stands for the provider, a system apart from payonce's database, so it stays
 * reachable when payonce's own connection does not (as a real provider would). Whoever
 * creates it calls `destroy()`.
 */
export function createGatewayDb(config: Pick<Config, 'DATABASE_URL' | 'GATEWAY_DATABASE_URL'>): Db {
  return createDb({
    DATABASE_URL: config.GATEWAY_DATABASE_URL ?? config.DATABASE_URL,
    DATABASE_POOL_MAX: GATEWAY_POOL_MAX,
  });
}

/**
 * Whether the simulator declines `idempotencyKey` at `declineRate`: the first 32 bits of the
 * key's SHA-256, as a fraction of 2^32, compared with the rate. The same key always gets the
 * same answer, keys are declined in the proportion `declineRate`, 0 declines none and 1 all.
 */
export function declinesKey(idempotencyKey: string, declineRate: number): boolean {
  const draw = createHash('sha256').update(idempotencyKey).digest().readUInt32BE(0) / 2 ** 32;
  return draw < declineRate;
}

export interface SimulatedGatewayOptions {
  /** The ledger's database (`createGatewayDb`), with payonce's migrations applied; not closed here. */
  db: Db;
  /** How long each charge takes (the provider's latency), before anything is charged. */
  delayMs: number;
  /** Fraction of idempotency keys declined, 0..1; see `declinesKey`. */
  declineRate: number;
}

interface ChargeRequest {
  idempotencyKey: string;
  purchaseId: string;
  amount: number;
  /** This simulator's decision for the key; a key already charged stays charged whatever it says. */
  approve: boolean;
}

interface ChargeRow {
  idempotency_key: string;
  purchase_id: string;
  amount: number;
  charged_at: Date;
}

/**
 * A stand-in for a real provider that honours the idempotency key across every process that
 * uses it, as a real provider does. Its ledger is the `gateway_charges` table: one row per
 * approved charge, keyed by the idempotency key (today the purchase id). A charge:
 *
 * 1. waits `delayMs`, the provider's latency. A process killed meanwhile has charged nothing.
 * 2. decides by the key (`declinesKey`), so a repeated key gets the same decision in any
 *    process with the same `declineRate`. Declines are not stored: they are reproduced.
 * 3. charges by inserting the ledger row (`on conflict (idempotency_key) do nothing`). If the
 *    key is already there, whichever process or container charged it, the answer is that first
 *    charge (approved) and nothing new is charged; that holds for a key this simulator would
 *    now decline, too (a rate changed between the two calls).
 *
 * A repeated key with another amount is rejected (an error, as real providers answer a reused
 * key whose parameters differ), as is an amount the ledger cannot hold. Concurrent charges are
 * written in one statement per event-loop turn (`createBatcher`), so the simulator does not
 * become a worker's bottleneck when `delayMs` is 0.
 */
export function createSimulatedGateway(options: SimulatedGatewayOptions): PaymentGateway {
  const { db, delayMs, declineRate } = options;

  /** Each request's answer: true when its key is charged (now or before), false when declined. */
  const ledger = createBatcher<ChargeRequest, boolean>(async (requests) => {
    const rows = new Map<string, ChargeRow>();
    const toCharge = new Map<string, ChargeRequest>();
    for (const request of requests) {
      if (request.approve && !toCharge.has(request.idempotencyKey)) toCharge.set(request.idempotencyKey, request);
    }
    if (toCharge.size > 0) {
      const inserted = (await db('gateway_charges')
        .insert(
          [...toCharge.values()].map((request) => ({
            idempotency_key: request.idempotencyKey,
            purchase_id: request.purchaseId,
            amount: request.amount,
          })),
        )
        .onConflict('idempotency_key')
        .ignore()
        .returning('*')) as ChargeRow[];
      for (const row of inserted) rows.set(row.idempotency_key, row);
    }
    // Keys charged before (or by a concurrent charge that committed first), and declined keys,
    // which may have been charged under another decline rate.
    const earlier = [...new Set(requests.map((request) => request.idempotencyKey))].filter((key) => !rows.has(key));
    if (earlier.length > 0) {
      const found = (await db('gateway_charges').whereIn('idempotency_key', earlier)) as ChargeRow[];
      for (const row of found) rows.set(row.idempotency_key, row);
    }
    return requests.map((request) => {
      const row = rows.get(request.idempotencyKey);
      if (!row)
        return request.approve ? new Error(`charge ${request.idempotencyKey} neither inserted nor found`) : false;
      if (row.amount !== request.amount) {
        return new Error(
          `idempotency key ${request.idempotencyKey} was charged ${row.amount}, not ${request.amount}; nothing charged`,
        );
      }
      return true;
    });
  });

  return {
    async charge({ purchaseId, amount }) {
      if (!Number.isInteger(amount) || amount < 0 || amount > MAX_AMOUNT) {
        throw new RangeError(`amount ${amount} is not whole cents from 0 to ${MAX_AMOUNT}; nothing charged`);
      }
      if (delayMs > 0) await sleep(delayMs);
      const approve = !declinesKey(purchaseId, declineRate);
      const charged = await ledger.load({ idempotencyKey: purchaseId, purchaseId, amount, approve });
      return charged ? { approved: true } : { approved: false, reason: FAILURE_REASONS.CARD_DECLINED };
    },
  };
}

/**
 * Asks the simulated gateway's ledger whether a purchase was charged (by its gateway idempotency
 * key, the purchase id), as a real provider answers a lookup by idempotency key. The reconciler
 * uses it before it gives up on a purchase.
 */
export function createChargeLookup(db: Db): (purchaseId: string) => Promise<boolean> {
  return async (purchaseId) =>
    (await db('gateway_charges').where({ idempotency_key: purchaseId }).first()) !== undefined;
}
