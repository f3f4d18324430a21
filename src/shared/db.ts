import knex, { type Knex } from 'knex';
import type { Config } from './config.js';
import { migrationSource } from '../../migrations/index.js';

export type Db = Knex;

/** Creates the knex instance (and its pg pool). Whoever creates it calls `db.destroy()`. */
export function createDb(config: Pick<Config, 'DATABASE_URL' | 'DATABASE_POOL_MAX'>): Db {
  return knex({
    client: 'pg',
    connection: {
      connectionString: config.DATABASE_URL,
      // Fail fast when Postgres is unreachable instead of hanging a request or a job.
      connectionTimeoutMillis: 3_000,
      application_name: 'payonce',
    },
    pool: { min: 0, max: config.DATABASE_POOL_MAX },
    acquireConnectionTimeout: 5_000,
  });
}

/**
 * Creates the database named in `databaseUrl` if it does not exist, by connecting to the
 * server's `postgres` maintenance database. Safe to run concurrently and repeatedly.
 */
export async function ensureDatabaseExists(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  const maintenanceUrl = new URL(databaseUrl);
  maintenanceUrl.pathname = '/postgres';
  const admin = knex({ client: 'pg', connection: maintenanceUrl.toString(), pool: { min: 0, max: 1 } });
  try {
    const found = await admin.raw<{ rows: unknown[] }>('select 1 from pg_database where datname = ?', [name]);
    if (found.rows.length > 0) return false;
    try {
      await admin.raw('create database ??', [name]);
    } catch (error) {
      // 42P04 duplicate_database: another process created it first, which is fine.
      if ((error as { code?: string }).code !== '42P04') throw error;
      return false;
    }
    return true;
  } finally {
    await admin.destroy();
  }
}

/** Applies every pending migration; returns the names it applied. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

/** Rolls back every migration (used by tests and `db:rollback`). */
export async function rollbackAll(db: Db): Promise<void> {
  await db.migrate.rollback({ migrationSource }, true);
}
