import { LRUCache } from 'lru-cache';
import type { Db } from '../../shared/db.js';

export interface PurchaseReferences {
  userExists: boolean;
  /** The product's price in cents, or null when the product does not exist. */
  price: number | null;
}

export interface PurchaseReferencesOptions {
  db: Db;
  /**
   * How long a found user or price is reused without asking Postgres. A price change reaches new
   * purchases within this long. Missing users and products are never cached, so ones created a
   * moment ago are purchasable at once. Default 5 s.
   */
  ttlMs?: number;
  /** Entries kept per cache. Default 10 000. */
  maxEntries?: number;
}

/**
 * Answers "may this account's user buy this account's product, and at what price?" for the
 * accept path: one Postgres round trip for both, and none while both answers are cached. A user
 * or product of another account is answered exactly as one that does not exist.
 */
export function createPurchaseReferences(options: PurchaseReferencesOptions) {
  const { db, ttlMs = 5_000, maxEntries = 10_000 } = options;
  // Keyed by account and id: an id is global, so the account is what makes the answer.
  const users = new LRUCache<string, true>({ max: maxEntries, ttl: ttlMs });
  const prices = new LRUCache<string, number>({ max: maxEntries, ttl: ttlMs });

  return {
    async lookupPurchaseReferences(accountId: number, userId: number, productId: number): Promise<PurchaseReferences> {
      const userKey = `${accountId}/${userId}`;
      const productKey = `${accountId}/${productId}`;
      const cachedUser = users.get(userKey);
      const cachedPrice = prices.get(productKey);
      if (cachedUser && cachedPrice !== undefined) return { userExists: true, price: cachedPrice };

      const { rows } = await db.raw<{ rows: Array<{ user_exists: boolean; price: number | null }> }>(
        `select exists (select 1 from users where id = ? and account_id = ?) as user_exists,
                (select price from products where id = ? and account_id = ?) as price`,
        [userId, accountId, productId, accountId],
      );
      const row = rows[0]!;
      if (row.user_exists) users.set(userKey, true);
      if (row.price !== null) prices.set(productKey, row.price);
      return { userExists: row.user_exists, price: row.price };
    },
  };
}

export type PurchaseReferencesLookup = ReturnType<typeof createPurchaseReferences>;
