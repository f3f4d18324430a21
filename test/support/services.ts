import { loadConfig, type Config } from '../../src/shared/config.js';
import type { Db } from '../../src/shared/db.js';
import {
  createScratchDatabase,
  randomSuffix,
  SCRATCH_REDIS_URL,
  scratchAccountId,
  type ScratchDatabase,
} from '../../scripts/lib/scratch.js';

export { eventually } from '../../scripts/lib/eventually.js';
export { deleteKeys, randomSuffix, scratchAccountId } from '../../scripts/lib/scratch.js';

/** The Redis tests use. */
export const TEST_REDIS_URL = SCRATCH_REDIS_URL;

export type TestDatabase = ScratchDatabase;

/** A fresh, migrated database of this test file's own. */
export function createTestDatabase(): Promise<TestDatabase> {
  return createScratchDatabase('payonce_test');
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

/**
 * Inserts a user and a product, in `options.accountId` or else the test database's own account
 * (the one its API key belongs to), and returns their ids.
 */
export async function seedUserAndProduct(
  db: Db,
  options: { username?: string; price?: number; accountId?: number } = {},
): Promise<{ userId: number; productId: number; price: number }> {
  const price = options.price ?? 1999;
  const account_id = options.accountId ?? (await scratchAccountId(db));
  const [user] = await db('users')
    .insert({ account_id, username: options.username ?? `user_${randomSuffix()}` })
    .returning('id');
  const [product] = await db('products')
    .insert({ account_id, name: `product ${randomSuffix()}`, price })
    .returning('id');
  return { userId: (user as { id: number }).id, productId: (product as { id: number }).id, price };
}

/** Inserts `count` users (in the test database's account) and returns their ids, in insertion order. */
export async function seedUsers(db: Db, count: number): Promise<number[]> {
  const suffix = randomSuffix();
  const account_id = await scratchAccountId(db);
  const rows = Array.from({ length: count }, (_, index) => ({ account_id, username: `user_${suffix}_${index}` }));
  const inserted = (await db('users').insert(rows).returning('id')) as { id: number }[];
  return inserted.map((row) => row.id);
}

/** Inserts `count` products at `price` cents (default 1999, in the test database's account) and returns their ids. */
export async function seedProducts(db: Db, count: number, price = 1999): Promise<number[]> {
  const suffix = randomSuffix();
  const account_id = await scratchAccountId(db);
  const rows = Array.from({ length: count }, (_, index) => ({ account_id, name: `product ${suffix} ${index}`, price }));
  const inserted = (await db('products').insert(rows).returning('id')) as { id: number }[];
  return inserted.map((row) => row.id);
}
