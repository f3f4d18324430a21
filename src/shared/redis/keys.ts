/**
 * Every Redis key and channel name payonce uses, all under one prefix (`REDIS_KEY_PREFIX`), so
 * tests, tenants and deployments sharing a Redis never collide. Nothing else builds a key name.
 */
export function redisKeys(prefix: string) {
  return {
    /** An idempotency claim: the value is "<purchaseId> <fingerprint>" (see idempotency-store.ts). */
    claim: (idempotencyKey: string) => `${prefix}:idem:${idempotencyKey}`,
    /** A purchase's in-flight record (hash), or its outcome when Postgres could not take it. */
    purchaseState: (purchaseId: string) => `${prefix}:purchase:${purchaseId}`,
    /** The pub/sub channel on which the worker announces finished purchases. */
    purchaseEvents: `${prefix}:purchase-events`,
    /** The job the SQS producer sent under a deduplication id (see sqs-purchase-producer.ts). */
    sqsSentJob: (deduplicationId: string) => `${prefix}:sqs-dedup:${deduplicationId}`,
    /** A rate limiter's counter of one key in one window (see src/shared/rate-counter.ts). */
    rateCounter: (counter: string) => `${prefix}:rate:${counter}`,
    /** BullMQ's own key prefix; BullMQ names its keys below it. */
    bullmq: bullmqPrefix(prefix),
  } as const;
}

export type RedisKeys = ReturnType<typeof redisKeys>;

/** The BullMQ key prefix for a payonce key prefix (for BullMQ's `prefix` option). */
export function bullmqPrefix(prefix: string): string {
  return `${prefix}:bull`;
}
