import { setTimeout as sleep } from 'node:timers/promises';
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

export interface SimulatedGatewayOptions {
  /** How long each charge takes. */
  delayMs: number;
  /** Fraction of charges declined, 0..1. */
  declineRate: number;
  /** Source of randomness, injectable for tests. Default Math.random. */
  random?: () => number;
  /** How many idempotency keys the simulator remembers. Default 100 000. */
  rememberedKeys?: number;
}

/**
 * A stand-in for a real provider: takes `delayMs`, declines a `declineRate` fraction, and
 * honours the idempotency key like a real provider does, within this process's memory.
 */
export function createSimulatedGateway(options: SimulatedGatewayOptions): PaymentGateway {
  const random = options.random ?? Math.random;
  const capacity = options.rememberedKeys ?? 100_000;
  const results = new Map<string, ChargeResult>();
  return {
    async charge({ purchaseId }) {
      const known = results.get(purchaseId);
      if (known) return known;
      if (options.delayMs > 0) await sleep(options.delayMs);
      const result: ChargeResult =
        random() < options.declineRate
          ? { approved: false, reason: FAILURE_REASONS.CARD_DECLINED }
          : { approved: true };
      // Maps iterate in insertion order, so the first key is the oldest.
      if (results.size >= capacity) results.delete(results.keys().next().value!);
      results.set(purchaseId, result);
      return result;
    },
  };
}
