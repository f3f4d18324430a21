import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // The simulated payment gateway's ledger (src/worker/payment-gateway.ts): one row per approved
  // charge. It stands for the provider's own records, so nothing here references payonce's
  // tables; it lives in payonce's database only so that every environment has it.
  await knex.schema.createTable('gateway_charges', (table) => {
    // The provider-side idempotency key is the primary key: a repeated key cannot charge twice,
    // whichever worker process or container sends it.
    table.text('idempotency_key').primary();
    table.uuid('purchase_id').notNullable();
    table.integer('amount').notNullable();
    table.timestamp('charged_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('alter table gateway_charges add constraint gateway_charges_amount_non_negative check (amount >= 0)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('gateway_charges');
}
