import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (table) => {
    table.increments('id').primary();
    table.string('username', 64).notNullable().unique();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('products', (table) => {
    table.increments('id').primary();
    table.string('name', 200).notNullable();
    table.text('description');
    table.integer('price').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('alter table products add constraint products_price_non_negative check (price >= 0)');

  await knex.schema.createTable('payments', (table) => {
    // The purchase id is the primary key: a second write of the same purchase cannot create a
    // second row, whatever the queue redelivers.
    table.uuid('id').primary();
    table.integer('user_id').notNullable().references('id').inTable('users');
    table.integer('product_id').notNullable().references('id').inTable('products');
    table.integer('amount').notNullable();
    table.string('status', 16).notNullable();
    table.text('failure_reason');
    table.string('idempotency_key', 400).notNullable();
    table.timestamp('accepted_at', { useTz: true }).notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.index(['user_id', 'created_at']);
  });
  await knex.raw(`
    alter table payments
      add constraint payments_amount_non_negative check (amount >= 0),
      add constraint payments_status_known check (status in ('succeeded', 'failed')),
      add constraint payments_failure_has_reason
        check ((status = 'failed') = (failure_reason is not null))
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('payments');
  await knex.schema.dropTableIfExists('products');
  await knex.schema.dropTableIfExists('users');
}
