import type { Knex } from 'knex';

/** The account `npm start` and `npm run db:seed` put the demo data in. */
export const DEMO_ACCOUNT = 'demo';

export const DEMO_USERS = ['alice', 'bob', 'carol'] as const;

export const DEMO_PRODUCTS = [
  { name: 'Coffee', description: 'A single espresso', price: 350 },
  { name: 'Notebook', description: 'A5, dotted, 120 pages', price: 1250 },
  { name: 'Headphones', description: 'Over-ear, wireless', price: 8999 },
] as const;

/**
 * The demo account with its users and products; returns the account's id. Safe to run again at
 * any time, including after payments exist: rows are only added when missing, never deleted or
 * changed. It creates no API key (keys are shown once: `npm start` makes and keeps one).
 */
export async function seed(knex: Knex): Promise<number> {
  const accounts = () => knex<{ id: number; name: string }>('accounts');
  const found = await accounts().where({ name: DEMO_ACCOUNT }).orderBy('id').first('id');
  const accountId = found ? found.id : (await accounts().insert({ name: DEMO_ACCOUNT }).returning('id'))[0]!.id;
  await knex('users')
    .insert(DEMO_USERS.map((username) => ({ account_id: accountId, username })))
    .onConflict(['account_id', 'username'])
    .ignore();
  for (const product of DEMO_PRODUCTS) {
    await knex.raw(
      `insert into products (account_id, name, description, price)
       select :accountId, :name, :description, :price
       where not exists (select 1 from products where account_id = :accountId and name = :name)`,
      { accountId, ...product },
    );
  }
  return accountId;
}
