import type { Knex } from 'knex';

export const DEMO_USERS = ['alice', 'bob', 'carol'] as const;

export const DEMO_PRODUCTS = [
  { name: 'Coffee', description: 'A single espresso', price: 350 },
  { name: 'Notebook', description: 'A5, dotted, 120 pages', price: 1250 },
  { name: 'Headphones', description: 'Over-ear, wireless', price: 8999 },
] as const;

/**
 * Demo users and products. Safe to run again at any time, including after payments exist:
 * rows are only added when missing, never deleted or changed.
 */
export async function seed(knex: Knex): Promise<void> {
  await knex('users')
    .insert(DEMO_USERS.map((username) => ({ username })))
    .onConflict('username')
    .ignore();
  for (const product of DEMO_PRODUCTS) {
    await knex.raw(
      `insert into products (name, description, price)
       select :name, :description, :price
       where not exists (select 1 from products where name = :name)`,
      product,
    );
  }
}
