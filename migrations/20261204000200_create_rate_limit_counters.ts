import type { Knex } from 'knex';

/**
 * The rate limiter's counters on the Postgres backend (the Redis backend keeps them in Redis):
 * one row per API key and one-second window. Unlogged: counters need no crash safety, and
 * skipping the write-ahead log makes each request's increment cheaper.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create unlogged table rate_limit_counters (
      key text not null,
      window_start bigint not null,
      count integer not null,
      primary key (key, window_start)
    )
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rate_limit_counters');
}
