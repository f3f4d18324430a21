import type { Redis } from 'ioredis';
import { createBatcher } from '../batching.js';
import { HSET_FROM_ARGV, luaFieldList } from './lua.js';
import { PURCHASE_STATUSES, RETENTION_SECONDS, type Purchase, type PurchaseStatus } from './purchase.js';

/** Published on the events channel when a purchase reaches a final status. */
export interface PurchaseFinishedEvent {
  purchaseId: string;
  status: PurchaseStatus;
}

// Every script here takes a batch of purchases, one state key each: a worker running many jobs
// at once updates them in one round trip per batch instead of one per job.

// Moves each queued purchase to processing, never backwards from a final status.
// KEYS: states. ARGV: updatedAt.
const MARK_PROCESSING_SCRIPT = `
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'processing', 'updatedAt', ARGV[1])
  end
end
return #KEYS
`;

// Announces outcomes Postgres now holds, and drops their in-flight records: status reads ask
// Postgres first, so the record has nothing left to say. KEYS: states. ARGV: channel, then an
// event per key.
const ANNOUNCE_RECORDED_SCRIPT = `
for i, key in ipairs(KEYS) do
  redis.call('DEL', key)
  redis.call('PUBLISH', ARGV[1], ARGV[i + 1])
end
return #KEYS
`;

// Records outcomes that Postgres could not take, where Redis is then their only record, and
// announces each. KEYS: states. ARGV: channel, then for each key: ttl, event, and the values
// of FINISHED_FIELDS in that order.
const FINISHED_FIELDS = ['userId', 'productId', 'amount', 'status', 'failureReason', 'createdAt', 'updatedAt'] as const;
const KEEP_UNRECORDED_SCRIPT = `${HSET_FROM_ARGV}
local fields = ${luaFieldList(FINISHED_FIELDS)}
local stride = 2 + #fields
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * stride
  hsetFromArgv(key, fields, base + 2)
  redis.call('EXPIRE', key, ARGV[base + 1])
  redis.call('PUBLISH', ARGV[1], ARGV[base + 2])
end
return #KEYS
`;

interface StateCommands {
  payonceMarkProcessing(numberOfKeys: number, ...keysAndArgs: string[]): Promise<number>;
  payonceAnnounceRecorded(numberOfKeys: number, ...keysAndArgs: string[]): Promise<number>;
  payonceKeepUnrecorded(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
}

export interface PurchaseStateStoreOptions {
  redis: Redis;
  prefix: string;
}

/**
 * The in-flight view of purchases (`queued`, `processing`) in Redis, the outcomes Postgres
 * could not take, and the channel on which the worker announces finished purchases. Postgres is
 * the record of finished purchases; this store only answers for purchases it does not have.
 */
export function createPurchaseStateStore(options: PurchaseStateStoreOptions) {
  const { redis, prefix } = options;
  // The key count varies with the batch, so it is passed on each call (numberOfKeys omitted).
  redis.defineCommand('payonceMarkProcessing', { lua: MARK_PROCESSING_SCRIPT });
  redis.defineCommand('payonceAnnounceRecorded', { lua: ANNOUNCE_RECORDED_SCRIPT });
  redis.defineCommand('payonceKeepUnrecorded', { lua: KEEP_UNRECORDED_SCRIPT });
  const commands = redis as unknown as StateCommands;
  const stateKey = (purchaseId: string) => `${prefix}:purchase:${purchaseId}`;
  const eventsChannel = `${prefix}:purchase-events`;

  const processingMarker = createBatcher<string, true>(
    async (purchaseIds) => {
      const keys = purchaseIds.map(stateKey);
      await commands.payonceMarkProcessing(keys.length, ...keys, new Date().toISOString());
      return purchaseIds.map(() => true as const);
    }
  );

  const event = (purchase: Purchase) =>
    JSON.stringify({ purchaseId: purchase.purchaseId, status: purchase.status } satisfies PurchaseFinishedEvent);

  const recordedAnnouncer = createBatcher<Purchase, true>(
    async (purchases) => {
      const keys = purchases.map(({ purchaseId }) => stateKey(purchaseId));
      await commands.payonceAnnounceRecorded(keys.length, ...keys, eventsChannel, ...purchases.map(event));
      return purchases.map(() => true as const);
    }
  );

  const unrecordedKeeper = createBatcher<Purchase, true>(
    async (purchases) => {
      const keys = purchases.map(({ purchaseId }) => stateKey(purchaseId));
      const args = purchases.flatMap((purchase) => {
        const record: Record<(typeof FINISHED_FIELDS)[number], string | number> = {
          userId: purchase.userId,
          productId: purchase.productId,
          amount: purchase.amount,
          status: purchase.status,
          failureReason: purchase.failureReason ?? '',
          createdAt: purchase.createdAt.toISOString(),
          updatedAt: purchase.updatedAt.toISOString(),
        };
        return [RETENTION_SECONDS, event(purchase), ...FINISHED_FIELDS.map((field) => record[field])];
      });
      await commands.payonceKeepUnrecorded(keys.length, ...keys, eventsChannel, ...args);
      return purchases.map(() => true as const);
    }
  );

  return {
    stateKey,
    eventsChannel,

    async getPurchaseState(purchaseId: string): Promise<Purchase | null> {
      const fields = await redis.hgetall(stateKey(purchaseId));
      return parseState(purchaseId, fields);
    },

    /** Marks a queued purchase as processing; a no-op for one that is already further along. */
    async markProcessing(purchaseId: string): Promise<void> {
      await processingMarker.load(purchaseId);
    },

    /**
     * Announces a final outcome. Once Postgres holds it, the in-flight record is dropped (status
     * reads ask Postgres first); with `inPostgres: false`, when it could not be written there,
     * Redis keeps it as the only record for `RETENTION_SECONDS`.
     */
    async markFinished(purchase: Purchase, options: { inPostgres?: boolean } = {}): Promise<void> {
      await (options.inPostgres === false ? unrecordedKeeper : recordedAnnouncer).load(purchase);
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
