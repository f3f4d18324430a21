import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPurchaseReferences } from '../../src/api/catalog/purchase-references.js';
import { createTestDatabase, seedUserAndProduct, type TestDatabase } from '../support/services.js';

const lookup = (references: ReturnType<typeof createPurchaseReferences>, userId: number, productId: number) =>
  references.lookupPurchaseReferences(database.account.id, userId, productId);

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

describe('purchase references on a real Postgres', () => {
  it('answers both questions in one query and reuses found answers for the TTL', async () => {
    const { userId, productId } = await seedUserAndProduct(database.db, { price: 700 });
    const references = createPurchaseReferences({ db: database.db, ttlMs: 2_000 });
    expect(await lookup(references, userId, productId)).toEqual({ userExists: true, price: 700 });

    await database.db('products').where({ id: productId }).update({ price: 900 });
    // Within the TTL the cached price stands; after it the new one applies.
    expect((await lookup(references, userId, productId)).price).toBe(700);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect((await lookup(references, userId, productId)).price).toBe(900);
  });

  it('never caches a missing user or product, so new ones are purchasable at once', async () => {
    const references = createPurchaseReferences({ db: database.db, ttlMs: 60_000 });
    const [{ id: userId }] = await database
      .db('users')
      .insert({ account_id: database.account.id, username: 'late' })
      .returning('id');
    expect(await lookup(references, userId, 2_000_000_000)).toEqual({ userExists: true, price: null });
    const [{ id: productId }] = await database
      .db('products')
      .insert({ account_id: database.account.id, name: 'late', price: 5 })
      .returning('id');
    expect(await lookup(references, userId, productId)).toEqual({ userExists: true, price: 5 });
    expect(await lookup(references, 2_000_000_000, productId)).toEqual({
      userExists: false,
      price: 5,
    });
  });
});
