import type { Redis } from 'ioredis';
import { createBatcher } from '../batching.js';
import { HSET_FROM_ARGV, luaFieldList } from './lua.js';
import type { PurchaseStatus } from './purchase.js';

/**
 * The idempotency key of a purchase. An `Idempotency-Key` header is scoped to the user, so two
 * users can never collide; without one, the key is derived from (user, product): one purchase of
 * a product per user per TTL window.
 */
export function idempotencyKeyFor(input: {
  userId: number;
  productId: number;
  headerKey?: string | undefined;
}): string {
  return input.headerKey === undefined
    ? `user:${input.userId}:product:${input.productId}`
    : `user:${input.userId}:key:${input.headerKey}`;
}

/** What the body of a purchase must match for a replay under the same key to be a duplicate. */
export function purchaseFingerprint(input: { userId: number; productId: number }): string {
  return `${input.userId}/${input.productId}`;
}

export interface Claim {
  purchaseId: string;
  fingerprint: string;
}

export type ClaimResult = { claimed: true } | { claimed: false; existing: Claim };

/** The fields of the in-flight purchase record created together with the claim. */
export interface ClaimedPurchaseState {
  userId: number;
  productId: number;
  amount: number;
  status: PurchaseStatus;
  createdAt: string;
}

// A claim is stored as "<purchaseId> <fingerprint>"; the purchase id comes first so the scripts
// below can check ownership without parsing the rest.
const encodeClaim = (claim: Claim) => `${claim.purchaseId} ${claim.fingerprint}`;
function decodeClaim(value: string): Claim {
  const space = value.indexOf(' ');
  return { purchaseId: value.slice(0, space), fingerprint: value.slice(space + 1) };
}

// The claim and confirm scripts take a batch: concurrent requests share one round trip. Each
// claim in a batch is still atomic on its own, and two claims of one key in one batch are
// decided in order, the first winning.

// For each (claim, state) key pair: claims the key and creates the purchase record, or returns
// the holder. Both live only for the pending TTL until the claim is confirmed: a purchase whose
// job was never enqueued must not look "queued" for days. ARGV: pending ttl, then for each
// pair the claim value and the values of CLAIMED_STATE_FIELDS in that order. Returns, for each
// pair, '' when claimed or the holder's claim value.
const CLAIMED_STATE_FIELDS = ['userId', 'productId', 'amount', 'status', 'createdAt'] as const;
const CLAIM_SCRIPT = `${HSET_FROM_ARGV}
local fields = ${luaFieldList(CLAIMED_STATE_FIELDS)}
local stride = 1 + #fields
local results = {}
for i = 1, #KEYS / 2 do
  local claimKey, stateKey = KEYS[2 * i - 1], KEYS[2 * i]
  local base = 1 + (i - 1) * stride
  local existing = redis.call('GET', claimKey)
  if existing then
    results[i] = existing
  else
    redis.call('SET', claimKey, ARGV[base + 1], 'EX', ARGV[1])
    hsetFromArgv(stateKey, fields, base + 1)
    redis.call('EXPIRE', stateKey, ARGV[1])
    results[i] = ''
  end
end
return results
`;

// Runs only while the claim still belongs to ARGV[1]: a claim that expired and was taken by a
// newer purchase is never touched. KEYS: claim, state.
const OWNED = `
local current = redis.call('GET', KEYS[1])
if not current or string.sub(current, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
`;
// For each (claim, state) key pair, still owned by its purchase: extends both to their full
// TTLs. ARGV: claim ttl, state ttl, then a purchase id per pair. Returns 1 or 0 per pair.
const CONFIRM_SCRIPT = `
local results = {}
for i = 1, #KEYS / 2 do
  local claimKey, stateKey, purchaseId = KEYS[2 * i - 1], KEYS[2 * i], ARGV[2 + i]
  local current = redis.call('GET', claimKey)
  if current and string.sub(current, 1, #purchaseId) == purchaseId then
    redis.call('EXPIRE', claimKey, ARGV[1])
    redis.call('EXPIRE', stateKey, ARGV[2])
    results[i] = 1
  else
    results[i] = 0
  end
end
return results
`;
// ARGV: purchase id.
const RELEASE_SCRIPT = `${OWNED}
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`;
// ARGV: purchase id, new claim value, claim ttl.
const REDIRECT_SCRIPT = `${OWNED}
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
`;

interface IdempotencyCommands {
  payonceClaim(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<string[]>;
  payonceConfirm(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
  payonceRelease(claimKey: string, stateKey: string, purchaseId: string): Promise<number>;
  payonceRedirect(claimKey: string, stateKey: string, ...args: (string | number)[]): Promise<number>;
}

export interface IdempotencyStoreOptions {
  redis: Redis;
  /** Redis key prefix shared by every payonce key. */
  prefix: string;
  /** How long an accepted purchase's key blocks duplicates. */
  ttlSeconds: number;
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
  /** Maps a purchase id to its state record key (owned by the purchase state store). */
  stateKey: (purchaseId: string) => string;
}

interface PendingClaim {
  key: string;
  claim: Claim;
  state: ClaimedPurchaseState;
}

/**
 * Atomic idempotency claims in Redis. A claim is taken with a short pending TTL, then confirmed
 * (extended to the full TTL) once its job is enqueued, or released if the enqueue failed.
 */
export function createIdempotencyStore(options: IdempotencyStoreOptions) {
  const { redis, prefix, ttlSeconds, stateTtlSeconds, stateKey } = options;
  const pendingTtlSeconds = Math.min(options.pendingTtlSeconds ?? 15, ttlSeconds);
  // Batched scripts: the key count is passed on each call.
  redis.defineCommand('payonceClaim', { lua: CLAIM_SCRIPT });
  redis.defineCommand('payonceConfirm', { lua: CONFIRM_SCRIPT });
  redis.defineCommand('payonceRelease', { numberOfKeys: 2, lua: RELEASE_SCRIPT });
  redis.defineCommand('payonceRedirect', { numberOfKeys: 2, lua: REDIRECT_SCRIPT });
  const commands = redis as unknown as IdempotencyCommands;
  const claimKey = (key: string) => `${prefix}:idem:${key}`;

  const claimer = createBatcher<PendingClaim, ClaimResult>(
    async (pending) => {
      const keys = pending.flatMap(({ key, claim }) => [claimKey(key), stateKey(claim.purchaseId)]);
      const args = pending.flatMap(({ claim, state }) => [
        encodeClaim(claim),
        ...CLAIMED_STATE_FIELDS.map((field) => String(state[field])),
      ]);
      const holders = await commands.payonceClaim(keys.length, ...keys, pendingTtlSeconds, ...args);
      return holders.map((holder) =>
        holder === '' ? { claimed: true as const } : { claimed: false as const, existing: decodeClaim(holder) },
      );
    }
  );

  const confirmer = createBatcher<{ key: string; purchaseId: string }, boolean>(
    async (pending) => {
      const keys = pending.flatMap(({ key, purchaseId }) => [claimKey(key), stateKey(purchaseId)]);
      const done = await commands.payonceConfirm(
        keys.length,
        ...keys,
        ttlSeconds,
        stateTtlSeconds,
        ...pending.map(({ purchaseId }) => purchaseId),
      );
      return done.map((result) => result === 1);
    }
  );

  return {
    /** The current holder of `key`, if any (for inspection; the claim itself reports holders). */
    async findClaim(key: string): Promise<Claim | null> {
      const value = await redis.get(claimKey(key));
      return value === null ? null : decodeClaim(value);
    },

    /**
     * Claims `key` for a new purchase and creates its `queued` record, atomically; or reports
     * who holds it. Exactly one of any number of concurrent claims of one key succeeds.
     */
    claimIdempotencyKey(key: string, claim: Claim, state: ClaimedPurchaseState): Promise<ClaimResult> {
      return claimer.load({ key, claim, state });
    },

    /** Extends a claim to the full TTL once its job is safely enqueued. */
    confirmClaim(key: string, purchaseId: string): Promise<boolean> {
      return confirmer.load({ key, purchaseId });
    },

    /** Gives a claim back (and drops its record) if it still belongs to `purchaseId`. */
    async releaseClaim(key: string, purchaseId: string): Promise<boolean> {
      return (await commands.payonceRelease(claimKey(key), stateKey(purchaseId), purchaseId)) === 1;
    },

    /**
     * Points a claim at another purchase that already holds the queue slot for this key (the
     * queue collapsed our job into it), dropping our never-queued record.
     */
    async redirectClaim(key: string, from: string, to: Claim): Promise<boolean> {
      const moved = await commands.payonceRedirect(
        claimKey(key),
        stateKey(from),
        from,
        encodeClaim(to),
        ttlSeconds,
      );
      return moved === 1;
    },
  };
}

export type IdempotencyStore = ReturnType<typeof createIdempotencyStore>;
