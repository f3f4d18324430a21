import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PRODUCTS, DEMO_USERS, seed } from '../../seeds/demo.js';
import { createTestDatabase, type TestDatabase } from '../support/services.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

const count = async (table: string) => Number(((await database.db(table).count({ n: '*' })) as [{ n: string }])[0].n);

describe('the demo seed', () => {
  it('loads the demo data and can run again, also once payments exist, without changing anything', async () => {
    await seed(database.db);
    expect(await count('users')).toBe(DEMO_USERS.length);
    expect(await count('products')).toBe(DEMO_PRODUCTS.length);

    const [user] = await database.db('users').select('id').limit(1);
    const [product] = await database.db('products').select('id', 'price').limit(1);
    await database.db('payments').insert({
      id: '00000000-0000-4000-8000-0000000000aa',
      user_id: user.id,
      product_id: product.id,
      amount: product.price,
      status: 'succeeded',
      idempotency_key: 'k',
      accepted_at: new Date(),
    });
    const before = await database.db('products').orderBy('id');

    await seed(database.db);
    await seed(database.db);
    expect(await count('users')).toBe(DEMO_USERS.length);
    expect(await database.db('products').orderBy('id')).toEqual(before);
    expect(await count('payments')).toBe(1);
  });
});
