import type { Knex } from 'knex';

/** The account that rows existing before accounts did are given, so that no data is lost. */
const EXISTING_DATA_ACCOUNT = 'default (rows created before accounts)';

/**
 * Accounts and API keys: an account is a merchant using payonce; its users (its customers),
 * products and purchases are its own. Existing users, products and purchases are moved into one
 * account made for them, and keep working once that account is given a key
 * (`npm run apikey:create -- --account <id>`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('accounts', (table) => {
    table.increments('id').primary();
    table.string('name', 200).notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('api_keys', (table) => {
    table.increments('id').primary();
    table.integer('account_id').notNullable().references('id').inTable('accounts');
    // SHA-256 of the whole key, hex: keys are never stored, so a leaked table grants nothing.
    table.string('key_hash', 64).notNullable().unique();
    // The key's first characters (`pk_live_` and 8 more), to name it in lists and to revoke it.
    table.string('key_prefix', 32).notNullable().unique();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('revoked_at', { useTz: true });
    table.index(['account_id']);
  });

  for (const name of ['users', 'products', 'purchases']) {
    await knex.schema.alterTable(name, (table) => {
      table.integer('account_id').references('id').inTable('accounts');
    });
  }

  const existing = await knex.raw<{ rows: Array<{ n: string }> }>(
    `select (select count(*) from users) + (select count(*) from products) + (select count(*) from purchases) as n`,
  );
  if (Number(existing.rows[0]!.n) > 0) {
    const [account] = await knex<{ id: number; name: string }>('accounts')
      .insert({ name: EXISTING_DATA_ACCOUNT })
      .returning('id');
    await knex('users').update({ account_id: account!.id });
    await knex('products').update({ account_id: account!.id });
  }
  // A purchase belongs to its user's account (purchases have no foreign key to users: see
  // the purchases migration); one whose user is gone goes to the account made above.
  await knex.raw(`
    update purchases p set account_id = coalesce(
      (select u.account_id from users u where u.id = p.user_id),
      (select min(id) from accounts))
  `);

  await knex.schema.alterTable('users', (table) => {
    table.integer('account_id').notNullable().alter();
    // Usernames are unique within an account: another account's usernames are not this one's business.
    table.dropUnique(['username']);
    table.unique(['account_id', 'username']);
  });
  await knex.schema.alterTable('products', (table) => {
    table.integer('account_id').notNullable().alter();
    table.index(['account_id', 'id']);
  });
  await knex.schema.alterTable('purchases', (table) => {
    table.integer('account_id').notNullable().alter();
    // An account's purchases, newest first (listing).
    table.index(['account_id', 'accepted_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('purchases', (table) => {
    table.dropIndex(['account_id', 'accepted_at']);
    table.dropColumn('account_id');
  });
  await knex.schema.alterTable('products', (table) => {
    table.dropIndex(['account_id', 'id']);
    table.dropColumn('account_id');
  });
  await knex.schema.alterTable('users', (table) => {
    table.dropUnique(['account_id', 'username']);
    table.dropColumn('account_id');
    table.unique(['username']);
  });
  await knex.schema.dropTableIfExists('api_keys');
  await knex.schema.dropTableIfExists('accounts');
}
