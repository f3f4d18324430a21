import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import { createPaymentsRepository } from '../shared/purchase/payments-repository.js';
import { createPurchaseStateStore } from '../shared/redis/purchase-state-store.js';
import type { Redis } from '../shared/redis/connection.js';
import { createSimulatedGateway } from './payment-gateway.js';
import { createPurchaseProcessor, type PurchaseProcessor } from './process-purchase.js';

/**
 * The purchase step wired as every worker entry wires it (process or Lambda, any transport):
 * payments in Postgres, in-flight records and announcements in Redis, the simulated gateway.
 */
export function purchaseProcessorFromConfig(
  config: Pick<Config, 'REDIS_KEY_PREFIX' | 'PAYMENT_DELAY_MS' | 'PAYMENT_DECLINE_RATE'>,
  clients: { db: Db; redis: Redis; logger: Logger },
): PurchaseProcessor {
  return createPurchaseProcessor({
    payments: createPaymentsRepository({ db: clients.db }),
    states: createPurchaseStateStore({ redis: clients.redis, prefix: config.REDIS_KEY_PREFIX }),
    gateway: createSimulatedGateway({
      delayMs: config.PAYMENT_DELAY_MS,
      declineRate: config.PAYMENT_DECLINE_RATE,
    }),
    logger: clients.logger,
  });
}
