import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import knex from 'knex';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { createDb, ensureDatabaseExists, migrateLatest, type Db } from '../../src/shared/db.js';

/** The Postgres server tests use: DATABASE_URL's server (default the local one). */
const SERVER_URL = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payonce');
/** The Redis tests use. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A short random suffix for database names, key prefixes and queue names. */
export const randomSuffix = () => randomBytes(5).toString('hex');

export interface TestDatabase {
  url: string;
  db: Db;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** A fresh, migrated database of this test file's own. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const url = new URL(SERVER_URL);
  url.pathname = `/payonce_test_${randomSuffix()}`;
  await ensureDatabaseExists(url.toString());
  const db = createDb({ DATABASE_URL: url.toString(), DATABASE_POOL_MAX: 10 });
  await migrateLatest(db);
  return {
    url: url.toString(),
    db,
    async drop() {
      await db.destroy();
      const admin = knex({ client: 'pg', connection: { connectionString: new URL('/postgres', SERVER_URL).toString() } });
      try {
        await admin.raw('drop database if exists ?? with (force)', [url.pathname.slice(1)]);
      } finally {
        await admin.destroy();
      }
    },
  };
}

/** Deletes every key under `prefix` (a test's own key prefix). */
export async function deleteKeys(prefix: string, redisUrl = TEST_REDIS_URL): Promise<void> {
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

/** A configuration isolated to one test: own database URL, key prefix and queue name. */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: `test_${randomSuffix()}`,
    QUEUE_NAME: `purchases_${randomSuffix()}`,
    PAYMENT_DELAY_MS: '0',
    // Test machines are loaded (two files at once, each with its processes): a generous Redis
    // bound keeps a slow moment from becoming a spurious 503. Outage tests see refused
    // connections, which fail at once whatever this is.
    REDIS_COMMAND_TIMEOUT_MS: '5000',
    ...overrides,
  });
}

/** Inserts a user and a product and returns their ids. */
export async function seedUserAndProduct(
  db: Db,
  options: { username?: string; price?: number } = {},
): Promise<{ userId: number; productId: number; price: number }> {
  const price = options.price ?? 1999;
  const [user] = await db('users').insert({ username: options.username ?? `user_${randomSuffix()}` }).returning('id');
  const [product] = await db('products').insert({ name: `product ${randomSuffix()}`, price }).returning('id');
  return { userId: (user as { id: number }).id, productId: (product as { id: number }).id, price };
}

/** Inserts `count` users and returns their ids, in insertion order. */
export async function seedUsers(db: Db, count: number): Promise<number[]> {
  const suffix = randomSuffix();
  const rows = Array.from({ length: count }, (_, index) => ({ username: `user_${suffix}_${index}` }));
  const inserted = (await db('users').insert(rows).returning('id')) as { id: number }[];
  return inserted.map((row) => row.id);
}

/** Inserts `count` products at `price` cents (default 1999) and returns their ids. */
export async function seedProducts(db: Db, count: number, price = 1999): Promise<number[]> {
  const suffix = randomSuffix();
  const rows = Array.from({ length: count }, (_, index) => ({ name: `product ${suffix} ${index}`, price }));
  const inserted = (await db('products').insert(rows).returning('id')) as { id: number }[];
  return inserted.map((row) => row.id);
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
