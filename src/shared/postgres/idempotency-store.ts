import { createBatcher } from '../batching.js';
import type { Db } from '../db.js';
import type { Claim, ClaimHolder, ClaimResult, IdempotencyStore } from '../purchase/idempotency.js';
import { retryOnDeadlock } from './deadlock.js';

export interface PostgresIdempotencyStoreOptions {
  db: Db;
  /** How long a confirmed claim blocks duplicates while its purchase is unfinished (see the Redis store). */
  unfinishedTtlSeconds: number;
  /** How long a claim lives before it is confirmed. Default 15 s. */
  pendingTtlSeconds?: number;
}

interface ClaimRow {
  key: string;
  purchase_id: string;
  fingerprint: string;
  confirmed: boolean;
}

const toHolder = (row: ClaimRow): ClaimHolder => ({
  existing: { purchaseId: row.purchase_id, fingerprint: row.fingerprint },
  confirmed: row.confirmed,
});

/** Most times a claim is tried again when its holder let go between the two statements of a claim. */
const CLAIM_ROUNDS = 5;

/**
 * Idempotency claims in the `idempotency_claims` table, with the Redis store's semantics: a claim
 * starts pending with a short life, is confirmed once its purchase is recorded and enqueued,
 * released only by its own purchase, and a claim past its `expires_at` is free. Expired rows are
 * taken over by the next claim of their key, and swept by `sweepExpired`.
 *
 * A batch of concurrent claims is one `insert … on conflict do nothing` (the primary key makes
 * exactly one of any number of concurrent claims of one key win; the losers' statements wait
 * for the winner's commit, then see its row), then one read of the keys that were held, and an
 * `update … where expired` for those whose claim had run out. Keys go in in order, so two
 * batches never wait on each other's rows in opposite orders.
 */
export function createPostgresIdempotencyStore(options: PostgresIdempotencyStoreOptions) {
  const { db, unfinishedTtlSeconds } = options;
  const pendingTtlSeconds = Math.min(options.pendingTtlSeconds ?? 15, unfinishedTtlSeconds);

  /** The claims of `keys` as they stand, live or expired. */
  async function current(keys: readonly string[]): Promise<Map<string, ClaimRow & { live: boolean }>> {
    const rows = await db('idempotency_claims')
      .whereIn('key', [...keys])
      .select<Array<ClaimRow & { live: boolean }>>(
        'key',
        'purchase_id',
        'fingerprint',
        'confirmed',
        db.raw('expires_at > now() as live'),
      );
    return new Map(rows.map((row) => [row.key, row]));
  }

  /**
   * Inserts the claims of free keys (one claim per key, in key order) and returns the keys it
   * claimed. `do nothing` on a conflict: a key that is held costs no lock and no write, which
   * keeps a storm of duplicates from queueing on one row.
   */
  async function insertClaims(claims: ReadonlyArray<{ key: string; claim: Claim }>): Promise<Set<string>> {
    const sorted = [...claims].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const result = await db.raw<{ rows: Array<{ key: string }> }>(
      `insert into idempotency_claims (key, purchase_id, fingerprint, confirmed, expires_at)
       select t.key, t.purchase_id, t.fingerprint, false, now() + make_interval(secs => ?)
       from unnest(?::text[], ?::uuid[], ?::text[]) with ordinality as t(key, purchase_id, fingerprint, n)
       order by t.n
       on conflict (key) do nothing
       returning key`,
      [
        pendingTtlSeconds,
        sorted.map(({ key }) => key),
        sorted.map(({ claim }) => claim.purchaseId),
        sorted.map(({ claim }) => claim.fingerprint),
      ],
    );
    return new Set(result.rows.map((row) => row.key));
  }

  /** Takes over the claims of keys whose claim has expired (checked again under the row lock); returns those it took. */
  async function takeOverExpired(claims: ReadonlyArray<{ key: string; claim: Claim }>): Promise<Set<string>> {
    const sorted = [...claims].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const result = await db.raw<{ rows: Array<{ key: string }> }>(
      `update idempotency_claims c
       set purchase_id = t.purchase_id, fingerprint = t.fingerprint, confirmed = false,
           expires_at = now() + make_interval(secs => ?)
       from unnest(?::text[], ?::uuid[], ?::text[]) as t(key, purchase_id, fingerprint)
       where c.key = t.key and c.expires_at <= now()
       returning c.key`,
      [
        pendingTtlSeconds,
        sorted.map(({ key }) => key),
        sorted.map(({ claim }) => claim.purchaseId),
        sorted.map(({ claim }) => claim.fingerprint),
      ],
    );
    return new Set(result.rows.map((row) => row.key));
  }

  // Each statement is retried on a deadlock on its own, never the whole round: a retry of the
  // round would find the keys its first statement had claimed (committed) held by itself.
  const claimer = createBatcher<{ key: string; claim: Claim }, ClaimResult>(async (requests) => {
    // The first request of each key takes part; later ones in the batch lose to it, in order.
    const first = new Map<string, { key: string; claim: Claim }>();
    for (const request of requests) if (!first.has(request.key)) first.set(request.key, request);
    const outcome = new Map<string, ClaimResult>();
    let open = [...first.values()];
    for (let round = 0; round < CLAIM_ROUNDS && open.length > 0; round++) {
      const inserted = await retryOnDeadlock(() => insertClaims(open));
      for (const key of inserted) outcome.set(key, { claimed: true });
      open = open.filter(({ key }) => !inserted.has(key));
      if (open.length === 0) break;
      const rows = await current(open.map(({ key }) => key));
      for (const [key, row] of rows) if (row.live) outcome.set(key, { claimed: false, ...toHolder(row) });
      const expired = open.filter(({ key }) => rows.get(key)?.live === false);
      if (expired.length > 0)
        for (const key of await retryOnDeadlock(() => takeOverExpired(expired))) outcome.set(key, { claimed: true });
      // Not decided yet: released, or taken over by another claim, in between. Try again.
      open = open.filter(({ key }) => !outcome.has(key));
    }
    return requests.map((request) => {
      const result = outcome.get(request.key);
      if (!result) return new Error(`could not claim or find the holder of ${request.key}`);
      if (first.get(request.key) === request) return result;
      // A later request of a key already decided in this batch: it lost to the first one.
      return result.claimed
        ? { claimed: false as const, existing: first.get(request.key)!.claim, confirmed: false }
        : result;
    });
  });

  const confirmer = createBatcher<{ key: string; purchaseId: string }, boolean>(async (requests) =>
    retryOnDeadlock(async () => {
      // A purchase that already finished (a fast worker shortened its claim) keeps that life.
      const result = await db.raw<{ rows: Array<{ key: string; purchase_id: string }> }>(
        `update idempotency_claims c
         set confirmed = true,
             expires_at = case when exists (select 1 from payments p where p.id = c.purchase_id)
                          then c.expires_at else now() + make_interval(secs => ?) end
         from unnest(?::text[], ?::uuid[]) as t(key, purchase_id)
         where c.key = t.key and c.purchase_id = t.purchase_id and c.expires_at > now()
         returning c.key, c.purchase_id`,
        [unfinishedTtlSeconds, requests.map(({ key }) => key), requests.map(({ purchaseId }) => purchaseId)],
      );
      const done = new Set(result.rows.map((row) => `${row.key}\n${row.purchase_id}`));
      return requests.map(({ key, purchaseId }) => done.has(`${key}\n${purchaseId}`));
    }),
  );

  const store: IdempotencyStore = {
    async findClaim(key) {
      const row = (await current([key])).get(key);
      return row?.live ? toHolder(row).existing : null;
    },

    async inspectClaim(key) {
      const row = (await current([key])).get(key);
      return row?.live ? toHolder(row) : null;
    },

    // The purchase's record is its `purchases` row, written by the accept flow itself.
    claimIdempotencyKey: (key, claim) => claimer.load({ key, claim }),

    confirmClaim: (key, purchaseId) => confirmer.load({ key, purchaseId }),

    async releaseClaim(key, purchaseId) {
      const deleted = await db('idempotency_claims').where({ key, purchase_id: purchaseId }).delete();
      return deleted > 0;
    },

    async redirectClaim(key, from, to) {
      const moved = await db('idempotency_claims')
        .where({ key, purchase_id: from })
        .where('expires_at', '>', db.fn.now())
        .update({
          purchase_id: to.purchaseId,
          fingerprint: to.fingerprint,
          // The purchase it points at holds the queue slot: recorded and enqueued.
          confirmed: true,
          expires_at: db.raw('now() + make_interval(secs => ?)', [unfinishedTtlSeconds]),
        });
      return moved > 0;
    },
  };

  return Object.assign(store, {
    /**
     * Deletes up to `limit` claims expired more than a minute ago; returns how many. The expiry
     * is checked again on each row as it is deleted, so a claim that a new purchase took over
     * meanwhile is kept.
     */
    async sweepExpired(limit = 1_000): Promise<number> {
      return db('idempotency_claims')
        .where('expires_at', '<', db.raw(`now() - interval '1 minute'`))
        .whereIn(
          'key',
          db('idempotency_claims')
            .select('key')
            .where('expires_at', '<', db.raw(`now() - interval '1 minute'`))
            .orderBy('expires_at')
            .limit(limit),
        )
        .delete();
    },
  });
}

export type PostgresIdempotencyStore = ReturnType<typeof createPostgresIdempotencyStore>;
