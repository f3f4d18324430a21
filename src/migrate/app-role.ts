import pg from 'pg';

/** The role the API and the worker connect as, and the password they connect with. */
export interface AppRole {
  name: string;
  password: string;
}

export interface AppRoleResult {
  name: string;
  /** True when this run created the role; false when it existed and only its password and grants were set. */
  created: boolean;
}

/** payonce's migrations create every table and sequence in this schema. */
const SCHEMA = 'public';

/** knex's bookkeeping (`knex_migrations`, `knex_migrations_lock` and their sequences): migrations only. */
const MIGRATION_RELATIONS = 'knex\\_migrations%';

/** Taken for the transaction, so that two runs at once take turns instead of both creating the role. */
const ADVISORY_LOCK = 'payonce: application role';

/**
 * Creates the application role if it is missing, or sets its password if it exists, and grants it
 * what the API and the worker do on the Redis store backend (the one AWS uses): SELECT, INSERT,
 * UPDATE and DELETE on payonce's tables and USAGE and SELECT on their sequences, in the schema
 * `public`, nothing on knex's migration tables, and nothing elsewhere (not BullMQ's `bullmq`
 * schema, which only the Postgres backend uses). Default privileges give it the same rights on the
 * tables and sequences later migrations create, as long as the user running them is the one
 * running this. Run it after the migrations, as the user that owns the tables (RDS's master user),
 * connected to `databaseUrl`. Idempotent, in one transaction.
 *
 * The password reaches the server as a literal of `ALTER ROLE`, which Postgres stores as a SCRAM
 * verifier; a server that logs DDL statements (`log_statement = 'ddl'`) would log it too.
 * @throws Error when a role of that name exists with more than login rights (superuser, createrole,
 *   createdb, replication or bypassrls, the migration user itself among them): it is left unchanged.
 */
export async function ensureAppRole(databaseUrl: string, role: AppRole): Promise<AppRoleResult> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: 'payonce-migrate',
    connectionTimeoutMillis: 10_000,
  });
  const name = pg.escapeIdentifier(role.name);
  const password = pg.escapeLiteral(role.password);
  const schema = pg.escapeIdentifier(SCHEMA);
  await client.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [ADVISORY_LOCK]);
    const existing = await client.query<{ privileged: boolean }>(
      `select rolsuper or rolcreaterole or rolcreatedb or rolreplication or rolbypassrls as privileged
         from pg_roles where rolname = $1`,
      [role.name],
    );
    const found = existing.rows[0];
    if (found?.privileged) {
      throw new Error(
        `role ${role.name} has more than login rights (superuser, createrole, createdb, replication or bypassrls): ` +
          'refusing to use it as the application role',
      );
    }
    await client.query(
      found ? `alter role ${name} with login password ${password}` : `create role ${name} login password ${password}`,
    );

    const database = (await client.query<{ name: string }>('select current_database() as name')).rows[0]!.name;
    await client.query(`grant connect on database ${pg.escapeIdentifier(database)} to ${name}`);
    await client.query(`grant usage on schema ${schema} to ${name}`);
    await client.query(`grant select, insert, update, delete on all tables in schema ${schema} to ${name}`);
    await client.query(`grant usage, select on all sequences in schema ${schema} to ${name}`);
    await client.query(
      `alter default privileges in schema ${schema} grant select, insert, update, delete on tables to ${name}`,
    );
    await client.query(`alter default privileges in schema ${schema} grant usage, select on sequences to ${name}`);
    // After the grants above, which cover knex's tables too (and default privileges would cover
    // them if this ever ran before the first migration created them).
    const bookkeeping = await client.query<{ relname: string; relkind: string }>(
      `select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p', 'S') and c.relname like $2`,
      [SCHEMA, MIGRATION_RELATIONS],
    );
    for (const { relname, relkind } of bookkeeping.rows) {
      const kind = relkind === 'S' ? 'sequence' : 'table';
      await client.query(`revoke all on ${kind} ${schema}.${pg.escapeIdentifier(relname)} from ${name}`);
    }
    await client.query('commit');
    return { name: role.name, created: !found };
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}
