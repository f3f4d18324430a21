import { createHash, createHmac, pbkdf2Sync, randomBytes, randomUUID } from 'node:crypto';
import knex from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAppRole } from '../../src/migrate/app-role.js';
import { createDb, migrateLatest, type Db } from '../../src/shared/db.js';
import { createTestDatabase, randomSuffix, seedUserAndProduct, type TestDatabase } from '../support/services.js';

/*
 * The migration function's application role (src/migrate/app-role.ts) on the local Postgres: set
 * up as `postgres`, which owns the scratch database's tables as RDS's master user owns payonce's,
 * then used by connecting as the role; and once more as a non-superuser like that master user. This machine's pg_hba.conf trusts every user on 127.0.0.1,
 * so those connections do not check the password; the password is checked against the SCRAM
 * verifier Postgres stored for it instead. Roles are cluster-wide: each run uses role names of
 * its own and drops them at the end.
 */

const ROLE = `payonce_app_test_${randomSuffix()}`;
/** A role with more than login rights, which the setup must refuse to take over. */
const CREATEDB_ROLE = `payonce_createdb_test_${randomSuffix()}`;
const password = () => randomBytes(24).toString('base64url');

let database: TestDatabase;
let asApp: Db;
let firstPassword: string;

/** Postgres' "insufficient_privilege". */
const DENIED = { code: '42501' };

/** Whether a stored `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` verifier is of `candidate` (RFC 5802). */
function isVerifierOf(verifier: string, candidate: string): boolean {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(verifier);
  if (!match) throw new Error(`not a SCRAM verifier: ${verifier.slice(0, 16)}…`);
  const [, iterations, salt, storedKey] = match;
  const salted = pbkdf2Sync(candidate, Buffer.from(salt!, 'base64'), Number(iterations), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return createHash('sha256').update(clientKey).digest('base64') === storedKey;
}

async function storedVerifier(role: string): Promise<string | null> {
  const row = await database
    .db('pg_authid')
    .where({ rolname: role })
    .first<{ rolpassword: string | null }>('rolpassword');
  return row?.rolpassword ?? null;
}

beforeAll(async () => {
  database = await createTestDatabase();
  firstPassword = password();
  const url = new URL(database.url);
  url.username = ROLE;
  url.password = firstPassword;
  asApp = createDb({ DATABASE_URL: url.toString(), DATABASE_POOL_MAX: 2 });
});

afterAll(async () => {
  await asApp?.destroy();
  // The database first: its grants and default privileges name the role, which cannot be dropped before them.
  await database?.drop();
  const admin = knex({ client: 'pg', connection: new URL('/postgres', database.url).toString() });
  try {
    for (const role of [ROLE, CREATEDB_ROLE]) await admin.raw('drop role if exists ??', [role]);
  } finally {
    await admin.destroy();
  }
});

describe('the application role', () => {
  it('is created with its password, and reads and writes payonce tables', async () => {
    expect(await ensureAppRole(database.url, { name: ROLE, password: firstPassword })).toEqual({
      name: ROLE,
      created: true,
    });
    expect(isVerifierOf((await storedVerifier(ROLE)) ?? '', firstPassword)).toBe(true);
    expect(await asApp.raw('select current_user as role')).toMatchObject({ rows: [{ role: ROLE }] });

    const { userId, productId } = await seedUserAndProduct(database.db);
    const purchase = {
      id: randomUUID(),
      account_id: database.account.id,
      user_id: userId,
      product_id: productId,
      amount: 1999,
      idempotency_key: `user:${userId}:key:app-role`,
      accepted_at: new Date(),
    };
    await asApp('purchases').insert(purchase);
    await asApp('purchases').where({ id: purchase.id }).update({ abandoned_at: new Date() });
    expect(await asApp('purchases').where({ id: purchase.id }).first('amount', 'abandoned_at')).toEqual({
      amount: 1999,
      abandoned_at: expect.any(Date),
    });
    // A serial id: the role needs its sequence too.
    const [user] = await asApp('users')
      .insert({ account_id: database.account.id, username: `app_${randomSuffix()}` })
      .returning('id');
    expect(user).toEqual({ id: expect.any(Number) });
    expect(await asApp('users').where(user!).del()).toBe(1);
  });

  it('cannot change the schema, truncate, or read migration state or BullMQ tables', async () => {
    await expect(asApp.raw('create table app_role_probe (id int)')).rejects.toMatchObject(DENIED);
    await expect(asApp.raw('drop table purchases')).rejects.toMatchObject(DENIED);
    await expect(asApp.raw('alter table purchases add column probe int')).rejects.toMatchObject(DENIED);
    await expect(asApp.raw('truncate purchases')).rejects.toMatchObject(DENIED);
    await expect(asApp('knex_migrations').select('name')).rejects.toMatchObject(DENIED);
    await expect(asApp('knex_migrations_lock').update({ is_locked: 1 })).rejects.toMatchObject(DENIED);
    // The scratch database has BullMQ's schema (for the Postgres backend); AWS uses the Redis one.
    const bullmq = await database
      .db('pg_tables')
      .where({ schemaname: 'bullmq' })
      .first<{ tablename: string }>('tablename');
    expect(bullmq).toBeDefined();
    await expect(asApp.withSchema('bullmq').from(bullmq!.tablename).select()).rejects.toMatchObject(DENIED);
  });

  it('gets the same rights on tables that later migrations create', async () => {
    await database.db.raw('create table later_migration (id serial primary key, note text not null)');
    await asApp('later_migration').insert({ note: 'from the app' });
    expect(await asApp('later_migration').select('id', 'note')).toEqual([{ id: 1, note: 'from the app' }]);
    await expect(asApp.raw('drop table later_migration')).rejects.toMatchObject(DENIED);
  });

  it('runs again without error, setting the new password and keeping the grants', async () => {
    const secondPassword = password();
    expect(await ensureAppRole(database.url, { name: ROLE, password: secondPassword })).toEqual({
      name: ROLE,
      created: false,
    });
    const verifier = (await storedVerifier(ROLE)) ?? '';
    expect(isVerifierOf(verifier, secondPassword)).toBe(true);
    expect(isVerifierOf(verifier, firstPassword)).toBe(false);
    expect(await asApp('purchases').count({ n: '*' })).toEqual([{ n: '1' }]);
    await expect(asApp('knex_migrations').select('name')).rejects.toMatchObject(DENIED);
  });

  it('refuses to take over a role with more than login rights, the migration user among them', async () => {
    await database.db.raw('create role ?? login createdb', [CREATEDB_ROLE]);
    for (const name of ['postgres', CREATEDB_ROLE]) {
      const before = await storedVerifier(name);
      await expect(ensureAppRole(database.url, { name, password: password() })).rejects.toThrow(
        `role ${name} has more than login rights`,
      );
      expect(await storedVerifier(name)).toBe(before);
    }
  });
});

describe("the application role, set up by a user like RDS's master user", () => {
  // Not a superuser (which no permission check stops): a role that may create roles and
  // databases and owns payonce's database and tables, as RDS's master user does.
  const MASTER = `payonce_master_test_${randomSuffix()}`;
  const APP = `payonce_app_test_${randomSuffix()}`;
  const DATABASE = `payonce_test_${randomSuffix()}`;
  const serverAdmin = () => knex({ client: 'pg', connection: new URL('/postgres', database.url).toString() });
  const urlAs = (user: string) => {
    const url = new URL(`/${DATABASE}`, database.url);
    url.username = user;
    return url.toString();
  };

  afterAll(async () => {
    const admin = serverAdmin();
    try {
      await admin.raw('drop database if exists ?? with (force)', [DATABASE]);
      for (const role of [APP, MASTER]) await admin.raw('drop role if exists ??', [role]);
    } finally {
      await admin.destroy();
    }
  });

  it('creates the role, updates it and grants it its rights without superuser powers', async () => {
    const admin = serverAdmin();
    try {
      await admin.raw('create role ?? login createrole createdb', [MASTER]);
      await admin.raw('create database ?? owner ??', [DATABASE, MASTER]);
    } finally {
      await admin.destroy();
    }
    const asMaster = createDb({ DATABASE_URL: urlAs(MASTER), DATABASE_POOL_MAX: 1 });
    const asRole = createDb({ DATABASE_URL: urlAs(APP), DATABASE_POOL_MAX: 1 });
    try {
      await migrateLatest(asMaster);
      expect(await ensureAppRole(urlAs(MASTER), { name: APP, password: password() })).toEqual({
        name: APP,
        created: true,
      });
      expect(await ensureAppRole(urlAs(MASTER), { name: APP, password: password() })).toMatchObject({ created: false });
      const [account] = await asRole('accounts').insert({ name: 'app role' }).returning('id');
      expect(await asRole('accounts').where(account!).first('name')).toEqual({ name: 'app role' });
      await expect(asRole('knex_migrations').select('name')).rejects.toMatchObject(DENIED);
      await expect(asRole.raw('drop table accounts')).rejects.toMatchObject(DENIED);
      await expect(ensureAppRole(urlAs(MASTER), { name: MASTER, password: password() })).rejects.toThrow(
        'more than login rights',
      );
    } finally {
      await asRole.destroy();
      await asMaster.destroy();
    }
  });
});
