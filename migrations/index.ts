import type { Knex } from 'knex';
import * as createUsersProductsPayments from './20261128000000_create_users_products_payments.js';
import * as createGatewayCharges from './20261202000000_create_gateway_charges.js';
import * as createPurchases from './20261202000100_create_purchases.js';
import * as createIdempotencyClaims from './20261204000000_create_idempotency_claims.js';
import * as createAccounts from './20261204000100_create_accounts.js';
import * as createRateLimitCounters from './20261204000200_create_rate_limit_counters.js';
import * as createWebhooks from './20261204000300_create_webhooks.js';

/**
 * Every migration, in order. Listing them here (instead of letting knex scan a folder) lets the
 * same migrations run from TypeScript sources (tests, tsx), the compiled build and a bundled
 * Lambda without a loader. `npm run db:make-migration NAME` adds new files to this list.
 */
const MIGRATIONS: ReadonlyArray<readonly [string, Knex.Migration]> = [
  ['20261128000000_create_users_products_payments', createUsersProductsPayments],
  ['20261202000000_create_gateway_charges', createGatewayCharges],
  ['20261202000100_create_purchases', createPurchases],
  ['20261204000000_create_idempotency_claims', createIdempotencyClaims],
  ['20261204000100_create_accounts', createAccounts],
  ['20261204000200_create_rate_limit_counters', createRateLimitCounters],
  ['20261204000300_create_webhooks', createWebhooks],
  // new migrations go above this line
];

export const migrationSource: Knex.MigrationSource<Knex.Migration> = {
  getMigrations: async () => MIGRATIONS.map(([, migration]) => migration),
  getMigrationName: (migration) => {
    const entry = MIGRATIONS.find(([, candidate]) => candidate === migration);
    if (!entry) throw new Error('unknown migration');
    return entry[0];
  },
  getMigration: async (migration) => migration,
};
