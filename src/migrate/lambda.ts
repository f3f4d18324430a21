import { createDb, ensureDatabaseExists, migrateLatest } from '../shared/db.js';
import { loadLambdaConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { seed } from '../../seeds/demo.js';

/** What the migration function may be asked (`aws lambda invoke --payload`); `{}` just migrates. */
export interface MigrateEvent {
  /** Also load the demo users and products (safe to repeat). Default false. */
  seed?: boolean;
}

export interface MigrateResult {
  /** True when the database itself had to be created. */
  databaseCreated: boolean;
  /** Names of the migrations this run applied, oldest first; empty when up to date. */
  applied: string[];
  seeded: boolean;
}

/**
 * Lambda entry (`index.handler` in migrate.zip), the Lambda twin of `npm run db:migrate`: creates
 * the database if needed and applies pending migrations, then seeds only if asked. It runs once
 * after each deploy, so it opens and closes its own connections per invocation. Two concurrent
 * runs are safe: knex's migration lock makes the second fail instead of migrating twice.
 */
export async function handler(event: MigrateEvent | null | undefined): Promise<MigrateResult> {
  const config = await loadLambdaConfig();
  const logger = createLogger(config, 'payonce-migrate');
  const databaseCreated = await ensureDatabaseExists(config.DATABASE_URL);
  const db = createDb(config);
  try {
    const applied = await migrateLatest(db);
    const seeded = event?.seed === true;
    if (seeded) await seed(db);
    logger.info({ databaseCreated, applied, seeded }, applied.length ? 'migrated' : 'database is up to date');
    return { databaseCreated, applied, seeded };
  } finally {
    await db.destroy();
  }
}
