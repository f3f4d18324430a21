import type { Db } from '../db.js';
import { newApiKey } from './api-keys.js';

/** Postgres's error code for a unique violation. */
const UNIQUE_VIOLATION = '23505';

interface AccountRow {
  id: number;
  name: string;
}

interface ApiKeyRow {
  account_id: number;
  key_hash: string;
  revoked_at: Date | null;
}

/** The account a key belongs to, and whether it is still valid. */
export interface ApiKeyRecord {
  accountId: number;
  revoked: boolean;
}

/**
 * Accounts and their API keys (tables `accounts`, `api_keys`). Keys are kept as SHA-256 hashes
 * only: `createApiKey` returns the key once, and nothing can show it again.
 */
export function createAccountsRepository({ db }: { db: Db }) {
  async function createApiKey(accountId: number): Promise<{ accountId: number; apiKey: string; keyPrefix: string }> {
    // A new prefix collides with an existing one about once in 2^48 keys: draw again then.
    for (;;) {
      const key = newApiKey();
      try {
        await db('api_keys').insert({ account_id: accountId, key_hash: key.keyHash, key_prefix: key.keyPrefix });
        return { accountId, apiKey: key.apiKey, keyPrefix: key.keyPrefix };
      } catch (error) {
        if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
      }
    }
  }

  return {
    /** Creates an account and its first API key. */
    async createAccount(name: string): Promise<{ accountId: number; apiKey: string; keyPrefix: string }> {
      const [row] = await db<AccountRow>('accounts').insert({ name }).returning('id');
      return createApiKey(row!.id);
    },

    /** Adds an API key to an existing account; null when there is no such account. */
    async addApiKey(accountId: number): Promise<{ accountId: number; apiKey: string; keyPrefix: string } | null> {
      const account = await db<AccountRow>('accounts').where({ id: accountId }).first('id');
      return account ? createApiKey(accountId) : null;
    },

    /** Revokes the key named by `keyPrefix`; false when no unrevoked key has that prefix. */
    async revokeApiKey(keyPrefix: string): Promise<boolean> {
      const revoked = await db('api_keys')
        .where({ key_prefix: keyPrefix })
        .whereNull('revoked_at')
        .update({ revoked_at: db.fn.now() });
      return revoked > 0;
    },

    /** The account of the key with this hash, revoked or not; null for a key never issued. */
    async findApiKey(keyHash: string): Promise<ApiKeyRecord | null> {
      const row = await db<ApiKeyRow>('api_keys').where({ key_hash: keyHash }).first('account_id', 'revoked_at');
      return row ? { accountId: row.account_id, revoked: row.revoked_at !== null } : null;
    },

    /** The account named `name`, if there is exactly such an account (the demo account of `npm start`). */
    async findAccountByName(name: string): Promise<number | null> {
      const row = await db<AccountRow>('accounts').where({ name }).orderBy('id').first('id');
      return row?.id ?? null;
    },
  };
}

export type AccountsRepository = ReturnType<typeof createAccountsRepository>;
