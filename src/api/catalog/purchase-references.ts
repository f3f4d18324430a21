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
 * Answers "may this user buy this product, and at what price?" for the accept path: one
 * Postgres round trip for both, and none while both answers are cached.
 */
export function createPurchaseReferences(options: PurchaseReferencesOptions) {
  const { db, ttlMs = 5_000, maxEntries = 10_000 } = options;
  const users = new LRUCache<number, true>({ max: maxEntries, ttl: ttlMs });
  const prices = new LRUCache<number, number>({ max: maxEntries, ttl: ttlMs });

  return {
    async lookupPurchaseReferences(userId: number, productId: number): Promise<PurchaseReferences> {
      const cachedUser = users.get(userId);
      const cachedPrice = prices.get(productId);
      if (cachedUser && cachedPrice !== undefined) return { userExists: true, price: cachedPrice };

      const { rows } = await db.raw<{ rows: Array<{ user_exists: boolean; price: number | null }> }>(
        `select exists (select 1 from users where id = ?) as user_exists,
                (select price from products where id = ?) as price`,
        [userId, productId],
      );
      const row = rows[0]!;
      if (row.user_exists) users.set(userId, true);
      if (row.price !== null) prices.set(productId, row.price);
      return { userExists: row.user_exists, price: row.price };
    },
  };
}

export type PurchaseReferencesLookup = ReturnType<typeof createPurchaseReferences>;
