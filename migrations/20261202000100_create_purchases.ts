import type { Knex } from 'knex';

/**
 * Durable acceptance: every purchase the API accepts is written here before it answers 202, so a
 * purchase outlives a Redis that lost its data, and its status URL answers from Postgres.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('purchases', (table) => {
    table.uuid('id').primary();
    // No foreign keys: the accept path has just checked both ids, and the payment row the
    // worker writes enforces them; a check here would cost every acceptance two index lookups.
    table.integer('user_id').notNullable();
    table.integer('product_id').notNullable();
    table.integer('amount').notNullable();
    table.string('idempotency_key', 400).notNullable();
    table.timestamp('accepted_at', { useTz: true }).notNullable();
    // Set when the acceptance was answered with anything but 202 (a 503 after the claim, or a
    // submission the queue folded into another purchase): the reconciler drops such a purchase
    // instead of completing it, unless its job did run.
    table.timestamp('abandoned_at', { useTz: true });
    // The index a reconciler scans for purchases accepted a while ago that have no payment.
    table.index(['accepted_at']);
  });
  await knex.raw('alter table purchases add constraint purchases_amount_non_negative check (amount >= 0)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('purchases');
}
