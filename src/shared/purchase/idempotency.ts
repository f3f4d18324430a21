import type { Redis } from 'ioredis';
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

// Claims the key and creates the purchase record in one atomic step, or returns the holder.
// Both live only for the pending TTL until the claim is confirmed: a purchase whose job was
// never enqueued must not look "queued" for days. KEYS: claim, state. ARGV: claim value,
// pending ttl, then state field/value pairs.
const CLAIM_SCRIPT = `
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return false
`;

// Runs only while the claim still belongs to ARGV[1]: a claim that expired and was taken by a
// newer purchase is never touched. KEYS: claim, state.
const OWNED = `
local current = redis.call('GET', KEYS[1])
if not current or string.sub(current, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
`;
// ARGV: purchase id, claim ttl, state ttl.
const CONFIRM_SCRIPT = `${OWNED}
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
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
  payonceClaim(claimKey: string, stateKey: string, ...args: (string | number)[]): Promise<string | null>;
  payonceConfirm(claimKey: string, stateKey: string, ...args: (string | number)[]): Promise<number>;
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
   * enqueue leaves a claim that expires after this long, not after the full TTL. It must
   * exceed the enqueue timeout (2 s). Default 15 s.
   */
  pendingTtlSeconds?: number;
  /** Maps a purchase id to its state record key (owned by the purchase state store). */
  stateKey: (purchaseId: string) => string;
}

/**
 * Atomic idempotency claims in Redis. A claim is taken with a short pending TTL, then confirmed
 * (extended to the full TTL) once its job is enqueued, or released if the enqueue failed.
 */
export function createIdempotencyStore(options: IdempotencyStoreOptions) {
  const { redis, prefix, ttlSeconds, stateTtlSeconds, stateKey } = options;
  const pendingTtlSeconds = Math.min(options.pendingTtlSeconds ?? 15, ttlSeconds);
  redis.defineCommand('payonceClaim', { numberOfKeys: 2, lua: CLAIM_SCRIPT });
  redis.defineCommand('payonceConfirm', { numberOfKeys: 2, lua: CONFIRM_SCRIPT });
  redis.defineCommand('payonceRelease', { numberOfKeys: 2, lua: RELEASE_SCRIPT });
  redis.defineCommand('payonceRedirect', { numberOfKeys: 2, lua: REDIRECT_SCRIPT });
  const commands = redis as unknown as IdempotencyCommands;
  const claimKey = (key: string) => `${prefix}:idem:${key}`;

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
    async claimIdempotencyKey(
      key: string,
      claim: Claim,
      state: ClaimedPurchaseState,
    ): Promise<ClaimResult> {
      const fields = Object.entries(state).flatMap(([field, value]) => [field, String(value)]);
      const existing = await commands.payonceClaim(
        claimKey(key),
        stateKey(claim.purchaseId),
        encodeClaim(claim),
        pendingTtlSeconds,
        ...fields,
      );
      return existing === null ? { claimed: true } : { claimed: false, existing: decodeClaim(existing) };
    },

    /** Extends a claim to the full TTL once its job is safely enqueued. */
    async confirmClaim(key: string, purchaseId: string): Promise<boolean> {
      const done = await commands.payonceConfirm(
        claimKey(key),
        stateKey(purchaseId),
        purchaseId,
        ttlSeconds,
        stateTtlSeconds,
      );
      return done === 1;
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
