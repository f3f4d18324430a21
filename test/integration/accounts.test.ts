import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import { hashApiKey } from '../../src/shared/accounts/api-keys.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

/** Accounts, API keys and per-key rate limits, against the API as the server composes it. */
describe.each(STORE_BACKENDS)('accounts and API keys (%s backend)', (backend) => {
  const RATE_LIMIT_MAX = 20;
  let stack: TestStack;
  let accounts: ReturnType<typeof createAccountsRepository>;
  let other: { accountId: number; apiKey: string; keyPrefix: string };

  beforeAll(async () => {
    stack = await createTestStack({ backend, env: { RATE_LIMIT_MAX: String(RATE_LIMIT_MAX) } });
    accounts = createAccountsRepository({ db: stack.database.db });
    other = await accounts.createAccount(`other-${randomUUID()}`);
  });
  afterAll(() => stack?.close());

  const as = (apiKey: string) => ({ authorization: `Bearer ${apiKey}` });
  const send = (method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: unknown) =>
    stack.app.inject({
      method,
      url,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  /** Sleeps until a new second (the limiter's window) has just begun, so a short burst falls in one window. */
  const atWindowStart = () => sleep(1_000 - (Date.now() % 1_000) + 20);
  /** Every test uses a fresh key of its own, so no test spends another's rate limit. */
  const freshKey = async (accountId = stack.database.account.id) => (await accounts.addApiKey(accountId))!.apiKey;

  it('refuses every client route without a valid key, with one answer for missing, malformed, unknown and revoked keys', async () => {
    const revoked = await accounts.addApiKey(stack.database.account.id);
    await accounts.revokeApiKey(revoked!.keyPrefix);
    const unknown = `pk_live_${'A'.repeat(32)}`;
    const refusals = [
      // Empty: the stack's inject sends no Authorization header at all.
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer not-a-key' },
      as(unknown),
      as(revoked!.apiKey),
    ];
    for (const headers of refusals) {
      for (const [method, url] of [
        ['GET', '/user'],
        ['GET', '/product'],
        ['POST', '/payment/purchase'],
        ['GET', `/payment/purchase/${randomUUID()}`],
      ] as const) {
        const answer = await send(method, url, headers, method === 'POST' ? { userId: 1, productId: 1 } : undefined);
        expect(answer.statusCode, `${method} ${url} ${JSON.stringify(headers)}`).toBe(401);
        expect(answer.json()).toEqual({
          statusCode: 401,
          code: 'UNAUTHENTICATED',
          error: 'Unauthorized',
          message: 'This route needs Authorization: Bearer <API key> with a valid key',
        });
        expect(answer.headers['www-authenticate']).toBe('Bearer realm="payonce"');
      }
    }
    // Public: health, the API document and its reference need no key.
    for (const url of ['/health/live', '/health/ready', '/openapi.json', '/docs']) {
      expect((await send('GET', url, { authorization: '' })).statusCode, url).toBeLessThan(400);
    }
  });

  it('looks an unknown and a revoked key up the same way: one indexed read by hash, then the cache', async () => {
    const revoked = await accounts.addApiKey(stack.database.account.id);
    await accounts.revokeApiKey(revoked!.keyPrefix);
    const unknown = `pk_live_${randomUUID().replaceAll('-', '')}`;
    const lookups: string[] = [];
    const onQuery = (query: { sql: string; bindings?: unknown[] }) => {
      if (/from "api_keys"/.test(query.sql)) lookups.push(String(query.bindings?.[0]));
    };
    stack.root.clients.db.on('query', onQuery);
    try {
      for (const key of [unknown, revoked!.apiKey, unknown, revoked!.apiKey]) {
        expect((await send('GET', '/user', as(key))).statusCode).toBe(401);
      }
    } finally {
      stack.root.clients.db.off('query', onQuery);
    }
    // The same one statement for each, by the key's SHA-256, never by the key itself.
    expect(lookups).toEqual([hashApiKey(unknown), hashApiKey(revoked!.apiKey)]);
  });

  it('keeps keys only as hashes, and refuses a revoked key within a second', async () => {
    const created = await accounts.addApiKey(stack.database.account.id);
    expect(created!.apiKey).toMatch(/^pk_live_[A-Za-z0-9_-]{32}$/);
    const rows = await stack.database.db('api_keys').where({ key_prefix: created!.keyPrefix });
    expect(rows).toEqual([expect.objectContaining({ key_hash: hashApiKey(created!.apiKey), revoked_at: null })]);
    expect(JSON.stringify(rows)).not.toContain(created!.apiKey);

    expect((await send('GET', '/user', as(created!.apiKey))).statusCode).toBe(200);
    expect(await accounts.revokeApiKey(created!.keyPrefix)).toBe(true);
    await sleep(1_100);
    expect((await send('GET', '/user', as(created!.apiKey))).statusCode).toBe(401);
    expect(await accounts.revokeApiKey(created!.keyPrefix)).toBe(false);
  });

  it("shows an account nothing of another's: users, products, purchases, usernames and idempotency keys", async () => {
    const mine = await freshKey();
    const theirs = await freshKey(other.accountId);
    const { userId, productId } = await seedUserAndProduct(stack.database.db, { price: 300 });
    const theirSeed = await seedUserAndProduct(stack.database.db, { price: 300, accountId: other.accountId });
    const theirIds = { userId: theirSeed.userId, productId: theirSeed.productId };
    const key = { 'idempotency-key': `shared-${randomUUID()}` };

    const listed = (await send('GET', '/user?limit=1000', as(theirs))).json<Array<{ id: number }>>();
    expect(listed.map((user) => user.id)).toEqual([theirIds.userId]);
    const products = (await send('GET', '/product?limit=1000', as(theirs))).json<Array<{ id: number }>>();
    expect(products.map((product) => product.id)).toEqual([theirIds.productId]);

    // My user or product in their purchase: unknown to them, exactly as a missing one.
    const myUser = await send('POST', '/payment/purchase', { ...as(theirs), ...key }, { ...theirIds, userId });
    expect(myUser.statusCode).toBe(422);
    expect(myUser.json()).toMatchObject({ code: 'USER_NOT_FOUND', message: `User ${userId} does not exist` });
    const myProduct = await send('POST', '/payment/purchase', as(theirs), { ...theirIds, productId });
    expect(myProduct.json()).toMatchObject({ code: 'PRODUCT_NOT_FOUND' });

    // The same Idempotency-Key in both accounts: two purchases, each its own account's.
    const mineAccepted = await send('POST', '/payment/purchase', { ...as(mine), ...key }, { userId, productId });
    const theirsAccepted = await send('POST', '/payment/purchase', { ...as(theirs), ...key }, theirIds);
    expect([mineAccepted.statusCode, theirsAccepted.statusCode]).toEqual([202, 202]);
    const myPurchase = mineAccepted.headers.location as string;
    expect(myPurchase).not.toBe(theirsAccepted.headers.location);
    expect((await send('GET', myPurchase, as(mine))).statusCode).toBe(200);
    const peek = await send('GET', myPurchase, as(theirs));
    expect(peek.statusCode).toBe(404);
    expect(peek.json()).toMatchObject({ code: 'PURCHASE_NOT_FOUND' });
    expect(await stack.database.db('purchases').where({ account_id: other.accountId }).count({ n: '*' })).toEqual([
      { n: '1' },
    ]);

    // A username is unique within an account only.
    const username = `same_${randomUUID().slice(0, 8)}`;
    expect((await send('POST', '/user', as(mine), { username })).statusCode).toBe(201);
    expect((await send('POST', '/user', as(theirs), { username })).statusCode).toBe(201);
    expect((await send('POST', '/user', as(theirs), { username })).json()).toMatchObject({ code: 'USERNAME_TAKEN' });
  });

  it('limits each key to RATE_LIMIT_MAX requests a second; a limited purchase claims nothing', async () => {
    const limited = await freshKey();
    const bystander = await freshKey();
    const { userId, productId } = await seedUserAndProduct(stack.database.db);
    const headers = (key: string, n: number) => ({ ...as(key), 'idempotency-key': `limit-${n}-${randomUUID()}` });

    await atWindowStart();
    const answers = await Promise.all(
      Array.from({ length: RATE_LIMIT_MAX + 3 }, (_, n) =>
        send('POST', '/payment/purchase', headers(limited, n), { userId, productId }),
      ),
    );
    const accepted = answers.filter((answer) => answer.statusCode === 202);
    const refused = answers.filter((answer) => answer.statusCode === 429);
    expect(accepted).toHaveLength(RATE_LIMIT_MAX);
    expect(refused).toHaveLength(3);
    for (const answer of accepted) expect(answer.headers['ratelimit-limit']).toBe(String(RATE_LIMIT_MAX));
    for (const answer of refused) {
      expect(answer.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' });
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(answer.headers['ratelimit-limit']).toBe(String(RATE_LIMIT_MAX));
      expect(answer.headers['ratelimit-remaining']).toBe('0');
    }
    // Exactly the accepted ones were claimed and recorded.
    expect(await stack.database.db('purchases').where({ user_id: userId }).count({ n: '*' })).toEqual([
      { n: String(accepted.length) },
    ]);
    expect((await stack.claimedKeys()).filter((claimed) => claimed.startsWith(`user:${userId}:`))).toHaveLength(
      RATE_LIMIT_MAX,
    );
    // Another key of the same account is not limited by it.
    expect((await send('GET', '/user', as(bystander))).statusCode).toBe(200);
    // The next second, the limited key works again.
    await sleep(1_100);
    expect((await send('GET', '/user', as(limited))).statusCode).toBe(200);
  });

  it('counts a key across API processes: a second app on the same stores shares the limit', async () => {
    const shared = await freshKey();
    const second = await createTestStack({
      backend,
      env: {
        DATABASE_URL: stack.config.DATABASE_URL,
        REDIS_KEY_PREFIX: stack.config.REDIS_KEY_PREFIX,
        RATE_LIMIT_MAX: String(RATE_LIMIT_MAX),
      },
      database: stack.database,
    });
    try {
      const apps = [stack, second];
      await atWindowStart();
      const answers = await Promise.all(
        Array.from({ length: 2 * RATE_LIMIT_MAX }, (_, n) =>
          apps[n % 2]!.app.inject({ method: 'GET', url: '/user', headers: as(shared) }),
        ),
      );
      // Counted per process, each would let RATE_LIMIT_MAX through; shared, the two let that many in all.
      expect(answers.filter((answer) => answer.statusCode === 200)).toHaveLength(RATE_LIMIT_MAX);
      expect(answers.filter((answer) => answer.statusCode === 429)).toHaveLength(RATE_LIMIT_MAX);
    } finally {
      await second.close({ keepDatabase: true });
    }
  });

  it('limits nothing with RATE_LIMIT_MAX=0', async () => {
    const key = await freshKey();
    const unlimited = await createTestStack({
      backend,
      env: {
        DATABASE_URL: stack.config.DATABASE_URL,
        REDIS_KEY_PREFIX: stack.config.REDIS_KEY_PREFIX,
        RATE_LIMIT_MAX: '0',
      },
      database: stack.database,
    });
    try {
      await atWindowStart();
      const answers = await Promise.all(
        Array.from({ length: 3 * RATE_LIMIT_MAX }, () =>
          unlimited.app.inject({ method: 'GET', url: '/user', headers: as(key) }),
        ),
      );
      expect(answers.map((answer) => answer.statusCode)).toEqual(answers.map(() => 200));
      expect(answers[0]!.headers['ratelimit-limit']).toBeUndefined();
    } finally {
      await unlimited.close({ keepDatabase: true });
    }
  });
});
