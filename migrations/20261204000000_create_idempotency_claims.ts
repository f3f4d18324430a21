import type { Knex } from 'knex';

/**
 * The Postgres store backend (STORE_BACKEND=postgres): idempotency claims, and the in-flight
 * state of accepted purchases, in PostgreSQL instead of Redis. The Redis backend leaves both
 * untouched.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('idempotency_claims', (table) => {
    // The idempotency key (scoped as src/shared/purchase/idempotency.ts builds it) is the primary
    // key: of any number of concurrent claims of one key, one insert wins.
    table.string('key', 400).primary();
    table.uuid('purchase_id').notNullable();
    // What the body must match for a replay to be a duplicate (else 422).
    table.text('fingerprint').notNullable();
    // Set once the purchase is recorded and enqueued: until then a duplicate must not be pointed at it.
    table.boolean('confirmed').notNullable().defaultTo(false);
    // A claim past this time is free: the next claim of its key takes the row over.
    table.timestamp('expires_at', { useTz: true }).notNullable();
    // The sweep of expired claims.
    table.index(['expires_at']);
  });

  await knex.schema.alterTable('purchases', (table) => {
    // When a worker started charging it (the Redis backend keeps this in Redis instead).
    table.timestamp('processing_at', { useTz: true });
    // An outcome the `payments` table could not take (its user or product was deleted): the
    // purchase's only record until the reconciler writes it (the Redis backend keeps it in Redis).
    table.string('unrecorded_status', 16);
    table.text('unrecorded_failure_reason');
    table.timestamp('unrecorded_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('purchases', (table) => {
    table.dropColumns('processing_at', 'unrecorded_status', 'unrecorded_failure_reason', 'unrecorded_at');
  });
  await knex.schema.dropTableIfExists('idempotency_claims');
}
