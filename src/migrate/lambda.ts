import { createDb, ensureDatabaseExists, migrateLatest } from '../shared/db.js';
import { loadLambdaConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { seed } from '../../seeds/demo.js';
import { ensureAppRole, type AppRoleResult } from './app-role.js';

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
  /** The application role this run created or updated (APP_DATABASE_ROLE); null when none is configured. */
  appRole: AppRoleResult | null;
}

/**
 * Lambda entry (`index.handler` in migrate.zip), the Lambda twin of `npm run db:migrate`: creates
 * the database if needed and applies pending migrations; with APP_DATABASE_ROLE, creates or
 * updates the application role the API and the worker connect as (password and grants, on every
 * run); then seeds only if asked. It runs once after each deploy, so it opens and closes its own
 * connections per invocation. Two concurrent runs are safe: knex's migration lock makes the
 * second fail instead of migrating twice.
 */
export async function handler(event: MigrateEvent | null | undefined): Promise<MigrateResult> {
  const config = await loadLambdaConfig();
  const logger = createLogger(config, 'payonce-migrate');
  const databaseCreated = await ensureDatabaseExists(config.DATABASE_URL);
  const db = createDb(config);
  try {
    const applied = await migrateLatest(db);
    // After the migrations, so that the grants cover the tables they have just created.
    const { APP_DATABASE_ROLE: name, APP_DATABASE_PASSWORD: password } = config;
    const appRole = name && password ? await ensureAppRole(config.DATABASE_URL, { name, password }) : null;
    const seeded = event?.seed === true;
    if (seeded) await seed(db);
    logger.info({ databaseCreated, applied, appRole, seeded }, applied.length ? 'migrated' : 'database is up to date');
    return { databaseCreated, applied, seeded, appRole };
  } finally {
    await db.destroy();
  }
}
