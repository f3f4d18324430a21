import type { RedisClient } from './connection.js';
import { createBatcher } from '../batching.js';
import { PURCHASE_STATUSES, RETENTION_SECONDS, type Purchase, type PurchaseStatus } from '../purchase/purchase.js';
import type { PurchaseStatusEvent, PurchaseRef, PurchaseStateStore } from '../purchase/purchase-states.js';
import { redisKeys } from './keys.js';
import { payonceScripts } from './scripts.js';
import { runPerSlot } from './slot-groups.js';

// Every script here takes a batch of purchases, one state key each: a worker running many jobs
// at once updates them in one round trip per batch instead of one per job (on a Redis Cluster,
// one per hash slot of the batch: see slot-groups.ts).

export interface PurchaseStateStoreOptions {
  /** A single Redis or a Cluster client; the key layout follows (`redisKeys`). */
  redis: RedisClient;
  prefix: string;
  /**
   * How long a purchase's idempotency claim lives after its outcome (IDEMPOTENCY_TTL_SECONDS);
   * until then it blocks duplicates for as long as the purchase is unfinished. Default 300 s.
   */
  claimTtlSeconds?: number;
}

/** A finished purchase and the idempotency key it was accepted under. */
interface Finished {
  purchase: Purchase;
  idempotencyKey: string;
}

/**
 * The in-flight view of purchases (`queued`, `processing`) in Redis, the outcomes Postgres
 * could not take, and the channel on which the worker announces purchases that start processing
 * or finish. Postgres is
 * the record of finished purchases; this store only answers for purchases it does not have.
 */
export function createRedisPurchaseStateStore(options: PurchaseStateStoreOptions) {
  const { redis, claimTtlSeconds = 300 } = options;
  const keys = redisKeys(options.prefix, { cluster: redis.isCluster });
  const scripts = payonceScripts(redis);
  const stateKey = keys.purchaseState;
  const eventsChannel = keys.purchaseEvents;
  /** One script call per batch, or per hash slot on a cluster; every purchase answers `true`. */
  const perSlot = <T>(
    items: readonly T[],
    refOf: (item: T) => PurchaseRef,
    run: (group: readonly T[]) => Promise<unknown>,
  ) =>
    runPerSlot(items, { cluster: redis.isCluster, slotKeyOf: (item) => stateKey(refOf(item)) }, async (group) => {
      await run(group);
      return group.map(() => true as const);
    });

  const event = ({ purchaseId, status }: Pick<Purchase, 'purchaseId' | 'status'>) =>
    JSON.stringify({ purchaseId, status } satisfies PurchaseStatusEvent);

  const processingMarker = createBatcher<PurchaseRef, true>((refs) =>
    perSlot(
      refs,
      (ref) => ref,
      (group) => {
        const stateKeys = group.map(stateKey);
        const events = group.map(({ purchaseId }) => event({ purchaseId, status: 'processing' }));
        return scripts.payonceMarkProcessing(
          stateKeys.length,
          ...stateKeys,
          new Date().toISOString(),
          eventsChannel,
          ...events,
        );
      },
    ),
  );

  const refOf = ({ purchase, idempotencyKey }: Finished): PurchaseRef => ({
    purchaseId: purchase.purchaseId,
    idempotencyKey,
  });
  const keysOf = (finished: readonly Finished[]) =>
    finished.flatMap((item) => [stateKey(refOf(item)), keys.claim(item.idempotencyKey)]);

  /** A batched outcome script: one call for the batch (per slot on a cluster), every purchase's state and claim key. */
  const outcomeBatcher = (
    run: (numberOfKeys: number, ...keysAndArgs: (string | number)[]) => Promise<number>,
    extraOf: (purchase: Purchase) => Record<string, unknown>,
  ) =>
    createBatcher<Finished, true>((batch) =>
      perSlot(batch, refOf, (finished) => {
        const outcomeKeys = keysOf(finished);
        const outcomes = finished.map(({ purchase }) =>
          JSON.stringify({ purchaseId: purchase.purchaseId, event: event(purchase), ...extraOf(purchase) }),
        );
        return run(outcomeKeys.length, ...outcomeKeys, eventsChannel, claimTtlSeconds, ...outcomes);
      }),
    );

  const recordedAnnouncer = outcomeBatcher(
    (...args) => scripts.payonceAnnounceRecorded(...args),
    () => ({}),
  );

  const unrecordedKeeper = outcomeBatcher(
    (...args) => scripts.payonceKeepUnrecorded(...args),
    (purchase) => {
      // Every field but the id, which is in the key.
      const state: Record<Exclude<keyof Purchase, 'purchaseId'>, string> = {
        userId: String(purchase.userId),
        productId: String(purchase.productId),
        amount: String(purchase.amount),
        status: purchase.status,
        failureReason: purchase.failureReason ?? '',
        createdAt: purchase.createdAt.toISOString(),
        updatedAt: purchase.updatedAt.toISOString(),
      };
      return { ttl: RETENTION_SECONDS, state };
    },
  );

  const store: PurchaseStateStore = {
    async getPurchaseState(ref: PurchaseRef): Promise<Purchase | null> {
      const fields = await redis.hgetall(stateKey(ref));
      return parseState(ref.purchaseId, fields);
    },

    async markProcessing(ref: PurchaseRef): Promise<void> {
      await processingMarker.load(ref);
    },

    /**
     * Once Postgres holds the outcome, the in-flight record is dropped (status reads ask Postgres
     * first); with `inPostgres: false` Redis keeps it as the only record for `RETENTION_SECONDS`.
     */
    async markFinished(purchase: Purchase, options: { idempotencyKey: string; inPostgres?: boolean }): Promise<void> {
      const finished = { purchase, idempotencyKey: options.idempotencyKey };
      await (options.inPostgres === false ? unrecordedKeeper : recordedAnnouncer).load(finished);
    },
  };
  return Object.assign(store, { stateKey, eventsChannel });
}

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
