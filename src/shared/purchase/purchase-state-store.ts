import type { Redis } from 'ioredis';
import { PURCHASE_STATUSES, type Purchase, type PurchaseStatus } from './purchase.js';

/** Published on the events channel when a purchase reaches a final status. */
export interface PurchaseFinishedEvent {
  purchaseId: string;
  status: PurchaseStatus;
}

// Moves queued -> processing, never backwards from a final status. ARGV: updatedAt.
const MARK_PROCESSING_SCRIPT = `
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'processing', 'updatedAt', ARGV[1])
return 1
`;

// Records a final outcome and announces it, in one round trip. KEYS: state. ARGV: ttl,
// channel, event, then field/value pairs.
const MARK_FINISHED_SCRIPT = `
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`;

interface StateCommands {
  payonceMarkProcessing(stateKey: string, updatedAt: string): Promise<number>;
  payonceMarkFinished(stateKey: string, ...args: (string | number)[]): Promise<number>;
}

export interface PurchaseStateStoreOptions {
  redis: Redis;
  prefix: string;
  /** How long a finished purchase's record stays in Redis; Postgres keeps it for good. */
  finishedTtlSeconds: number;
  /**
   * How long a final outcome that could not be written to Postgres stays in Redis, where it is
   * then the only record (BullMQ keeps the failed job as long). Default 7 days.
   */
  unrecordedTtlSeconds?: number;
}

/** Default life of an outcome Redis alone holds. */
export const UNRECORDED_OUTCOME_TTL_SECONDS = 7 * 24 * 3600;

/**
 * The in-flight view of purchases (`queued`, `processing`) in Redis, and the channel on which
 * the worker announces finished ones. Postgres is the record of finished purchases; this store
 * only answers for purchases Postgres does not have yet.
 */
export function createPurchaseStateStore(options: PurchaseStateStoreOptions) {
  const { redis, prefix, finishedTtlSeconds } = options;
  const unrecordedTtlSeconds = options.unrecordedTtlSeconds ?? UNRECORDED_OUTCOME_TTL_SECONDS;
  redis.defineCommand('payonceMarkProcessing', { numberOfKeys: 1, lua: MARK_PROCESSING_SCRIPT });
  redis.defineCommand('payonceMarkFinished', { numberOfKeys: 1, lua: MARK_FINISHED_SCRIPT });
  const commands = redis as unknown as StateCommands;
  const stateKey = (purchaseId: string) => `${prefix}:purchase:${purchaseId}`;
  const eventsChannel = `${prefix}:purchase-events`;

  return {
    stateKey,
    eventsChannel,

    async getPurchaseState(purchaseId: string): Promise<Purchase | null> {
      const fields = await redis.hgetall(stateKey(purchaseId));
      return parseState(purchaseId, fields);
    },

    /** Marks a queued purchase as processing; a no-op for one that is already further along. */
    async markProcessing(purchaseId: string, now = new Date()): Promise<void> {
      await commands.payonceMarkProcessing(stateKey(purchaseId), now.toISOString());
    },

    /**
     * Records a final outcome and announces it. Called after Postgres holds the outcome, or with
     * `inPostgres: false` when it could not be written there, to keep it visible for longer.
     */
    async markFinished(purchase: Purchase, options: { inPostgres?: boolean } = {}): Promise<void> {
      const event: PurchaseFinishedEvent = { purchaseId: purchase.purchaseId, status: purchase.status };
      await commands.payonceMarkFinished(
        stateKey(purchase.purchaseId),
        options.inPostgres === false ? unrecordedTtlSeconds : finishedTtlSeconds,
        eventsChannel,
        JSON.stringify(event),
        'userId',
        purchase.userId,
        'productId',
        purchase.productId,
        'amount',
        purchase.amount,
        'status',
        purchase.status,
        'failureReason',
        purchase.failureReason ?? '',
        'createdAt',
        purchase.createdAt.toISOString(),
        'updatedAt',
        purchase.updatedAt.toISOString(),
      );
    },
  };
}

export type PurchaseStateStore = ReturnType<typeof createPurchaseStateStore>;

function parseState(purchaseId: string, fields: Record<string, string>): Purchase | null {
  const status = fields.status as PurchaseStatus | undefined;
  if (!status || !PURCHASE_STATUSES.includes(status)) return null;
  const createdAt = new Date(fields.createdAt ?? '');
  return {
    purchaseId,
    userId: Number(fields.userId),
    productId: Number(fields.productId),
    status,
    amount: Number(fields.amount),
    failureReason: fields.failureReason ? fields.failureReason : null,
    createdAt,
    updatedAt: fields.updatedAt ? new Date(fields.updatedAt) : createdAt,
  };
}
