import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import knex from 'knex';
import { createDb, ensureDatabaseExists, migrateLatest, type Db } from '../../src/shared/db.js';
import { createAccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import { migrateQueueSchema } from '../../src/shared/postgres/queue-schema.js';

/**
 * Throwaway state for development tools (tests, the benchmark): a migrated database and a Redis
 * key prefix of a run's own, removed when it ends, on the local servers unless DATABASE_URL or
 * REDIS_URL name others.
 */

/** The Postgres server scratch databases are created on: DATABASE_URL's server (default the local one). */
const SERVER_URL = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payonce');
/** The Redis that scratch key prefixes live on. */
export const SCRATCH_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The account each scratch database was made with, by its pool. */
const scratchAccounts = new WeakMap<Db, number>();

/**
 * The account users and products go into when a tool seeds `db`: the one its scratch database was
 * made with, or else the database's first account.
 */
export async function scratchAccountId(db: Db): Promise<number> {
  const known = scratchAccounts.get(db);
  if (known !== undefined) return known;
  const row = await db<{ id: number }>('accounts').orderBy('id').first('id');
  if (!row) throw new Error('the database has no account to seed into');
  return row.id;
}

/** A short random suffix for database names, key prefixes and queue names. */
export const randomSuffix = () => randomBytes(5).toString('hex');

export interface ScratchDatabase {
  url: string;
  db: Db;
  /** An account made with the database, and an API key of it: what clients of the run send. */
  account: { id: number; apiKey: string };
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database named `<namePrefix>_<random suffix>`, BullMQ's schema included so
 * either store backend can run on it; the prefix tells a leftover's owner (`payonce_test`,
 * `payonce_bench`) when a run was killed before it could drop it.
 */
export async function createScratchDatabase(namePrefix: string): Promise<ScratchDatabase> {
  const url = new URL(SERVER_URL);
  url.pathname = `/${namePrefix}_${randomSuffix()}`;
  await ensureDatabaseExists(url.toString());
  const db = createDb({ DATABASE_URL: url.toString(), DATABASE_POOL_MAX: 10 });
  await migrateLatest(db);
  await migrateQueueSchema(url.toString());
  const { accountId, apiKey } = await createAccountsRepository({ db }).createAccount(namePrefix);
  scratchAccounts.set(db, accountId);
  return {
    url: url.toString(),
    db,
    account: { id: accountId, apiKey },
    async drop() {
      await db.destroy();
      const admin = knex({
        client: 'pg',
        connection: { connectionString: new URL('/postgres', SERVER_URL).toString() },
      });
      try {
        await admin.raw('drop database if exists ?? with (force)', [url.pathname.slice(1)]);
      } finally {
        await admin.destroy();
      }
    },
  };
}

/** Deletes every key under `prefix` (a run's own key prefix). */
export async function deleteKeys(prefix: string, redisUrl = SCRATCH_REDIS_URL): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
