import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import { createProductsRepository } from './catalog/products-repository.js';
import { createPurchaseReferences } from './catalog/purchase-references.js';
import { createUsersRepository } from './catalog/users-repository.js';
import { createIdempotencyStore } from '../shared/redis/idempotency-store.js';
import { createPaymentsRepository } from '../shared/purchase/payments-repository.js';
import { RETENTION_SECONDS } from '../shared/purchase/purchase.js';
import { createPurchaseStateStore } from '../shared/redis/purchase-state-store.js';
import type { PurchaseProducer } from '../shared/queue/purchase-producer.js';
import type { AppDeps } from './app.js';
import { createPurchaseOutcomeWaiter } from './purchase-outcome-waiter.js';
import { createPurchaseService } from './purchase-service.js';

export interface ApiClients {
  db: Db;
  /** Fail-fast connection for request paths. */
  redis: Redis;
  /** Dedicated connection for the purchase-events subscription. */
  subscriber: Redis;
  producer: PurchaseProducer;
  logger: Logger;
}

/**
 * Wires the API's services from clients its caller created (and will close): the server entry,
 * the Lambda handler and tests share this wiring.
 */
export function createApiServices(
  config: Pick<
    Config,
    'REDIS_KEY_PREFIX' | 'IDEMPOTENCY_TTL_SECONDS' | 'IDEMPOTENCY_PENDING_TTL_SECONDS' | 'QUEUE_DRIVER'
  >,
  clients: ApiClients,
) {
  const { db, redis, subscriber, producer, logger } = clients;
  const prefix = config.REDIS_KEY_PREFIX;
  const users = createUsersRepository({ db });
  const products = createProductsRepository({ db });
  const payments = createPaymentsRepository({ db });
  const states = createPurchaseStateStore({ redis, prefix });
  const idempotency = createIdempotencyStore({
    redis,
    prefix,
    ttlSeconds: config.IDEMPOTENCY_TTL_SECONDS,
    stateTtlSeconds: Math.max(RETENTION_SECONDS, config.IDEMPOTENCY_TTL_SECONDS),
    pendingTtlSeconds: config.IDEMPOTENCY_PENDING_TTL_SECONDS,
  });
  const waiter = createPurchaseOutcomeWaiter({ subscriber, channel: states.eventsChannel, logger });
  const purchases = createPurchaseService({
    idempotency,
    states,
    payments,
    references: createPurchaseReferences({ db }),
    producer,
    waiter,
    logger,
  });
  const readinessChecks: AppDeps['readinessChecks'] = [
    { name: 'postgres', check: () => db.raw('select 1') },
    { name: 'redis', check: () => redis.ping() },
    // BullMQ's queue is the Redis above; SQS is a dependency of its own.
    ...(config.QUEUE_DRIVER === 'sqs' ? [{ name: 'queue', check: () => producer.ping() }] : []),
  ];
  return { users, products, purchases, readinessChecks, waiter };
}
