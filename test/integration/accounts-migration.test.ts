import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import { migrateLatest } from '../../src/shared/db.js';
import { migrationSource } from '../../migrations/index.js';
import { createTestDatabase, type TestDatabase } from '../support/services.js';

/** The accounts migration on a database that already holds users, products, purchases and payments. */
describe('adding accounts to existing data', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database?.drop());

  it('moves every existing row into one account made for it, losing nothing', async () => {
    const { db } = database;
    // Back to the schema before accounts (and the migrations after it).
    while ((await db.migrate.currentVersion({ migrationSource })) >= '20261204000100') {
      await db.migrate.down({ migrationSource });
    }
    expect(await db.schema.hasTable('accounts')).toBe(false);
    const [user] = (await db('users').insert({ username: 'legacy' }).returning('id')) as [{ id: number }];
    const [product] = (await db('products').insert({ name: 'Legacy', price: 500 }).returning('id')) as [{ id: number }];
    const purchase = {
      id: '00000000-0000-4000-8000-0000000000a1',
      user_id: user.id,
      product_id: product.id,
      amount: 500,
      idempotency_key: `user:${user.id}:key:legacy`,
      accepted_at: new Date(),
    };
    await db('purchases').insert(purchase);
    await db('payments').insert({ ...purchase, status: 'succeeded' });

    await migrateLatest(db);

    const accounts = await db('accounts').select('id', 'name');
    expect(accounts).toEqual([{ id: expect.any(Number), name: 'default (rows created before accounts)' }]);
    const accountId = accounts[0]!.id as number;
    expect(await db('users').where({ id: user.id }).first()).toMatchObject({
      username: 'legacy',
      account_id: accountId,
    });
    expect(await db('products').where({ id: product.id }).first()).toMatchObject({ price: 500, account_id: accountId });
    expect(await db('purchases').where({ id: purchase.id }).first()).toMatchObject({ account_id: accountId });
    expect(await db('payments').count({ n: '*' })).toEqual([{ n: '1' }]);
    // The operator gives the account a key, and its data is served again.
    expect(await createAccountsRepository({ db }).addApiKey(accountId)).toMatchObject({ accountId });
  });

  it('migrates an empty database without making an account', async () => {
    const { db } = database;
    await db('payments').delete();
    await db('purchases').delete();
    await db('api_keys').delete();
    await db('users').delete();
    await db('products').delete();
    await db('accounts').delete();
    while ((await db.migrate.currentVersion({ migrationSource })) >= '20261204000100') {
      await db.migrate.down({ migrationSource });
    }
    await migrateLatest(db);
    expect(await db('accounts').count({ n: '*' })).toEqual([{ n: '0' }]);
  });
});
