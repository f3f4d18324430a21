import { setTimeout as sleep } from 'node:timers/promises';
import { FAILURE_REASONS } from '../shared/purchase/purchase.js';

export type ChargeResult = { approved: true } | { approved: false; reason: string };

/** The payment provider. `purchaseId` doubles as the provider-side idempotency key. */
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
}

/** A stand-in for a real provider: takes `delayMs` and declines a `declineRate` fraction. */
export function createSimulatedGateway(options: SimulatedGatewayOptions): PaymentGateway {
  const random = options.random ?? Math.random;
  return {
    async charge() {
      if (options.delayMs > 0) await sleep(options.delayMs);
      return random() < options.declineRate
        ? { approved: false, reason: FAILURE_REASONS.CARD_DECLINED }
        : { approved: true };
    },
  };
}
