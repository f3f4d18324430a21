import type { RedisClient } from './connection.js';
import { createBatcher } from '../batching.js';
import type {
  Claim,
  ClaimedPurchaseState,
  ClaimHolder,
  ClaimResult,
  IdempotencyStore,
} from '../purchase/idempotency.js';
import { redisKeys } from './keys.js';
import { payonceScripts } from './scripts.js';
import { runPerSlot } from './slot-groups.js';

// A claim is stored as "<purchaseId> <p|c> <fingerprint>", pending or confirmed; the purchase id
// comes first so the scripts can check ownership without parsing the rest, and the state second
// so the confirm script can flip it in place.
const encodeClaim = (claim: Claim, state: 'p' | 'c') => `${claim.purchaseId} ${state} ${claim.fingerprint}`;
/** A stored claim as its holder; one written before claims had a state (a rolling deploy) counts as confirmed. */
function toHolder(value: string): ClaimHolder {
  const space = value.indexOf(' ');
  const mark = value.slice(space, space + 3);
  const stated = mark === ' p ' || mark === ' c ';
  return {
    existing: { purchaseId: value.slice(0, space), fingerprint: value.slice(space + (stated ? 3 : 1)) },
    confirmed: mark !== ' p ',
  };
}

/** A purchase record's fields as the claim script writes them: every value a string. */
function stateFields(state: ClaimedPurchaseState): Record<keyof ClaimedPurchaseState, string> {
  return {
    userId: String(state.userId),
    productId: String(state.productId),
    amount: String(state.amount),
    status: state.status,
    createdAt: state.createdAt,
  };
}

export interface IdempotencyStoreOptions {
  /** A single Redis or a Cluster client; the key layout follows (`redisKeys`). */
  redis: RedisClient;
  /** Redis key prefix shared by every payonce key. */
  prefix: string;
  /**
   * How long a confirmed claim blocks duplicates while its purchase is unfinished: longer than
   * any retry schedule, so a key never expires under a purchase that may still be charged. The
   * worker shortens it to IDEMPOTENCY_TTL_SECONDS when the outcome is known.
   */
  unfinishedTtlSeconds: number;
  /** How long the in-flight purchase record lives (it outlives the claim). */
  stateTtlSeconds: number;
  /**
   * How long a claim lives before it is confirmed. A process that dies between claim and
   * enqueue leaves a claim that expires after this long, not after the full TTL. Keep it above
   * the enqueue timeout (2 s): a claim that expires during a slow enqueue lets a duplicate claim
   * the key again, which the queue's deduplication then folds (a 204, at the cost of a second
   * enqueue). Default 15 s.
   */
  pendingTtlSeconds?: number;
}

interface PendingClaim {
  key: string;
  claim: Claim;
  state: ClaimedPurchaseState;
}

/**
 * Atomic idempotency claims in Redis. The claim and confirm scripts take a batch, so concurrent
 * requests share one round trip.
 */
export function createRedisIdempotencyStore(options: IdempotencyStoreOptions): IdempotencyStore {
  const { redis, unfinishedTtlSeconds, stateTtlSeconds } = options;
  const pendingTtlSeconds = Math.min(options.pendingTtlSeconds ?? 15, unfinishedTtlSeconds);
  const keys = redisKeys(options.prefix, { cluster: redis.isCluster });
  const scripts = payonceScripts(redis);
  const claimAndStateKeys = ({ key, purchaseId }: { key: string; purchaseId: string }) => [
    keys.claim(key),
    keys.purchaseState({ purchaseId, idempotencyKey: key }),
  ];
  /** One script call per batch, or per hash slot on a cluster. */
  const perSlot = <T extends { key: string }, R>(pending: readonly T[], run: (group: readonly T[]) => Promise<R[]>) =>
    runPerSlot(pending, { cluster: redis.isCluster, slotKeyOf: ({ key }) => keys.claim(key) }, run);

  const claimer = createBatcher<PendingClaim, ClaimResult>((batch) =>
    perSlot(batch, async (pending) => {
      const claimKeys = pending.flatMap(({ key, claim }) => claimAndStateKeys({ key, purchaseId: claim.purchaseId }));
      const requests = pending.map(({ claim, state }) =>
        JSON.stringify({ claim: encodeClaim(claim, 'p'), state: stateFields(state) }),
      );
      const holders = await scripts.payonceClaimIdempotencyKeys(
        claimKeys.length,
        ...claimKeys,
        pendingTtlSeconds,
        ...requests,
      );
      return holders.map((holder) =>
        holder === '' ? { claimed: true as const } : { claimed: false as const, ...toHolder(holder) },
      );
    }),
  );

  const confirmer = createBatcher<{ key: string; purchaseId: string }, boolean>((batch) =>
    perSlot(batch, async (pending) => {
      const claimKeys = pending.flatMap(claimAndStateKeys);
      const done = await scripts.payonceConfirmClaims(
        claimKeys.length,
        ...claimKeys,
        unfinishedTtlSeconds,
        stateTtlSeconds,
        ...pending.map(({ purchaseId }) => purchaseId),
      );
      return done.map((result) => result === 1);
    }),
  );

  return {
    async findClaim(key: string): Promise<Claim | null> {
      const value = await redis.get(keys.claim(key));
      return value === null ? null : toHolder(value).existing;
    },

    async inspectClaim(key: string): Promise<ClaimHolder | null> {
      const value = await redis.get(keys.claim(key));
      return value === null ? null : toHolder(value);
    },

    claimIdempotencyKey(key: string, claim: Claim, state: ClaimedPurchaseState): Promise<ClaimResult> {
      return claimer.load({ key, claim, state });
    },

    confirmClaim(key: string, purchaseId: string): Promise<boolean> {
      return confirmer.load({ key, purchaseId });
    },

    async releaseClaim(key: string, purchaseId: string): Promise<boolean> {
      return (await scripts.payonceReleaseClaim(2, ...claimAndStateKeys({ key, purchaseId }), purchaseId)) === 1;
    },

    async redirectClaim(key: string, from: string, to: Claim): Promise<boolean> {
      const moved = await scripts.payonceRedirectClaim(
        2,
        ...claimAndStateKeys({ key, purchaseId: from }),
        from,
        // The purchase it points at holds the queue slot: recorded and enqueued.
        encodeClaim(to, 'c'),
        unfinishedTtlSeconds,
      );
      return moved === 1;
    },
  };
}
