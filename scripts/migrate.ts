import { loadProcessConfigOrExit } from '../src/shared/config.js';
import { createDb, ensureDatabaseExists, migrateLatest, rollbackAll } from '../src/shared/db.js';
import { migrateQueueSchema } from '../src/shared/postgres/queue-schema.js';

/**
 * `npm run db:migrate`: creates the database if needed, then applies pending migrations; on the
 * Postgres backend, also BullMQ's own schema (its queue's tables).
 */
const config = await loadProcessConfigOrExit();
const rollback = process.argv.includes('--rollback');
const created = await ensureDatabaseExists(config.DATABASE_URL);
if (created) console.log(`created database ${new URL(config.DATABASE_URL).pathname.slice(1)}`);
const db = createDb(config);
try {
  if (rollback) {
    await rollbackAll(db);
    console.log('rolled back every migration');
  } else {
    const applied = await migrateLatest(db);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    if (config.STORE_BACKEND === 'postgres')
      console.log(`BullMQ schema at version ${await migrateQueueSchema(config.DATABASE_URL)}`);
  }
} finally {
  await db.destroy();
}
