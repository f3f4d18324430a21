import { runMigrations } from 'bullmq';
import pg from 'pg';
import { BULLMQ_SCHEMA } from './names.js';

/**
 * Creates or upgrades BullMQ's own schema (its queues' tables and functions) in the database of
 * `databaseUrl`, for the Postgres backend: `npm run db:migrate` runs it after payonce's
 * migrations, so the processes never migrate on their own (BullMQ refuses a schema it does not
 * know with SchemaMigrationRequiredError). BullMQ's migrations run in one transaction under an
 * advisory lock, on a session of their own. Returns BullMQ's schema version.
 */
export async function migrateQueueSchema(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'payonce-migrate' });
  await client.connect();
  try {
    return await runMigrations(client, BULLMQ_SCHEMA);
  } finally {
    await client.end();
  }
}
