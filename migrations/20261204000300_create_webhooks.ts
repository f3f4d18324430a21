import type { Knex } from 'knex';

/**
 * Signed webhooks from a transactional outbox. An account registers endpoints; every outcome it
 * subscribes to is written as an event, and one delivery per subscribed endpoint, in the same
 * statement as the outcome itself (see payments-repository.ts), so neither exists without the
 * other. The worker's dispatcher delivers them (src/worker/webhooks/).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_endpoints', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    table.integer('account_id').notNullable().references('id').inTable('accounts');
    table.text('url').notNullable();
    // The event types it receives.
    table.specificType('events', 'text[]').notNullable();
    // The signing secret (`whsec_…`): kept as is, since every delivery is signed with it. After a
    // rotation the previous one signs too, until `previous_secret_expires_at`.
    table.text('secret').notNullable();
    table.text('previous_secret');
    table.timestamp('previous_secret_expires_at', { useTz: true });
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // Removed endpoints stay, so their delivery history does.
    table.timestamp('deleted_at', { useTz: true });
    table.index(['account_id']);
  });

  await knex.schema.createTable('webhook_events', (table) => {
    // The Standard Webhooks message id (`webhook-id`), the same on every attempt: `msg_…`.
    table.text('id').primary();
    table.integer('account_id').notNullable().references('id').inTable('accounts');
    table.string('type', 64).notNullable();
    table.uuid('purchase_id').notNullable();
    // The body every delivery sends, byte for byte.
    table.text('payload').notNullable();
    // A `purchase.accepted` event is written with its purchase, before the job is queued, and held
    // until the API has queued it (or its outcome is written): a held event is not sent, listed
    // or redelivered, and the reconciler deletes it with a purchase that was never queued, so no
    // endpoint hears of a purchase that was answered 503 or folded into another.
    table.boolean('held').notNullable().defaultTo(false);
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // One event per purchase and type: a write that is repeated (a rerun job) cannot make a second.
    table.unique(['purchase_id', 'type']);
    table.index(['account_id', 'created_at']);
  });

  await knex.schema.createTable('webhook_deliveries', (table) => {
    table.bigIncrements('id').primary();
    table.text('event_id').notNullable().references('id').inTable('webhook_events');
    table.uuid('endpoint_id').notNullable().references('id').inTable('webhook_endpoints');
    table.string('status', 16).notNullable().defaultTo('pending');
    table.integer('attempts').notNullable().defaultTo(0);
    table.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // While a dispatcher is sending it; a dispatcher that died lets it go when this passes.
    table.timestamp('locked_until', { useTz: true });
    table.integer('last_status_code');
    table.text('last_error');
    table.timestamp('last_attempt_at', { useTz: true });
    table.timestamp('delivered_at', { useTz: true });
    // Retries stop WEBHOOK_RETRY_HOURS after this: the delivery's creation, or its last redelivery.
    table.timestamp('retry_started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.unique(['event_id', 'endpoint_id']);
    table.index(['endpoint_id', 'created_at']);
  });
  await knex.raw(`
    alter table webhook_deliveries
      add constraint webhook_deliveries_status_known check (status in ('pending', 'delivered', 'failed'))
  `);
  // What a dispatcher looks for: pending deliveries that are due.
  await knex.raw(
    `create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending'`,
  );

  await knex.schema.createTable('webhook_delivery_attempts', (table) => {
    table.bigIncrements('id').primary();
    table.bigInteger('delivery_id').notNullable().references('id').inTable('webhook_deliveries');
    table.integer('attempt').notNullable();
    table.integer('status_code');
    table.text('error');
    table.integer('duration_ms').notNullable();
    table.timestamp('attempted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.index(['delivery_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('webhook_delivery_attempts');
  await knex.schema.dropTableIfExists('webhook_deliveries');
  await knex.schema.dropTableIfExists('webhook_events');
  await knex.schema.dropTableIfExists('webhook_endpoints');
}
