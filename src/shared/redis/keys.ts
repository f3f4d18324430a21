import { createHash } from 'node:crypto';
import type { PurchaseRef } from '../purchase/purchase-states.js';

/** Hex digits of an idempotency key's hash tag on a cluster (see `slotTag`). */
const SLOT_TAG_LENGTH = 16;

/** How payonce lays out its keys: on one Redis, or on a Redis Cluster (REDIS_CLUSTER). */
export interface KeyLayout {
  /**
   * Hash-tag the keys so that every script's keys share a slot: a purchase's claim and state by
   * its idempotency key, BullMQ's keys by the prefix. Default false: the single-Redis names,
   * unchanged since before cluster support, so existing deployments keep their keys.
   */
  cluster?: boolean;
}

/**
 * Every Redis key and channel name payonce uses, all under one prefix (`REDIS_KEY_PREFIX`), so
 * tests, tenants and deployments sharing a Redis never collide. Nothing else builds a key name.
 *
 * On a cluster, a purchase's claim and state keys carry the same hash tag, `{<slot tag>}` of its
 * idempotency key (see `slotTag`), so the scripts that touch both run in one slot; BullMQ's keys
 * carry the prefix as their tag (BullMQ's scripts touch many keys of a queue at once).
 */
export function redisKeys(prefix: string, layout: KeyLayout = {}) {
  const cluster = layout.cluster ?? false;
  const claimHead = `${prefix}:idem:`;
  return {
    /** An idempotency claim: the value is "<purchaseId> <p|c> <fingerprint>" (see idempotency-store.ts). */
    claim: cluster
      ? (idempotencyKey: string) => `${claimHead}{${slotTag(idempotencyKey)}}:${idempotencyKey}`
      : (idempotencyKey: string) => `${claimHead}${idempotencyKey}`,
    /** A purchase's in-flight record (hash), or its outcome when Postgres could not take it. */
    purchaseState: cluster
      ? ({ purchaseId, idempotencyKey }: PurchaseRef) => `${prefix}:purchase:{${slotTag(idempotencyKey)}}:${purchaseId}`
      : ({ purchaseId }: PurchaseRef) => `${prefix}:purchase:${purchaseId}`,
    /**
     * The pub/sub channel on which the worker announces finished purchases. Channels have no
     * slot: a cluster forwards a PUBLISH to every node, so subscribers on any node hear it.
     */
    purchaseEvents: `${prefix}:purchase-events`,
    /** The job the SQS producer sent under a deduplication id (one key per script: any slot will do). */
    sqsSentJob: (deduplicationId: string) => `${prefix}:sqs-dedup:${deduplicationId}`,
    /** A rate limiter's counter of one key in one window (see src/shared/rate-counter.ts). */
    rateCounter: (counter: string) => `${prefix}:rate:${counter}`,
    /** BullMQ's own key prefix; BullMQ names its keys below it. */
    bullmq: bullmqPrefix(prefix, layout),
    /** The idempotency key a claim key names (the inverse of `claim`). */
    idempotencyKeyOf: (claimKey: string) => claimKey.slice(claimHead.length + (cluster ? SLOT_TAG_LENGTH + 3 : 0)),
  } as const;
}

export type RedisKeys = ReturnType<typeof redisKeys>;

/**
 * The BullMQ key prefix for a payonce key prefix (for BullMQ's `prefix` option). On a cluster it
 * is a hash tag, as BullMQ's guide for Redis Cluster requires: `{<prefix>}:bull`.
 */
export function bullmqPrefix(prefix: string, layout: KeyLayout = {}): string {
  return layout.cluster ? `{${prefix}}:bull` : `${prefix}:bull`;
}

/**
 * The hash tag of an idempotency key: 16 hex digits of its SHA-256. Not the key itself, which
 * may hold `{` or `}` (an `Idempotency-Key` header is any visible ASCII) and would then end the
 * tag early, or leave it empty so that Redis hashes each whole key to a slot of its own. Two keys
 * with one tag only share a slot, which is harmless.
 */
function slotTag(idempotencyKey: string): string {
  return createHash('sha256').update(idempotencyKey).digest('hex').slice(0, SLOT_TAG_LENGTH);
}
