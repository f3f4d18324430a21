import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import { hashApiKey, looksLikeApiKey } from '../../src/shared/accounts/api-keys.js';
import { PROJECT_ROOT } from './processes.js';

/**
 * The quick start's own secrets, kept in PAYONCE_HOME across restarts so `npm start` prints the
 * same ones each time: the demo account's API key (`demo-api-key`; the database keeps only its
 * hash) and, unless ADMIN_TOKEN is set, the operator token (`admin-token`). Both files are
 * readable by their owner only. Relative homes count from the project root.
 */
export function quickStartSecrets(home: string) {
  const folder = resolve(PROJECT_ROOT, home);
  const read = (name: string) =>
    readFile(join(folder, name), 'utf8').then(
      (text) => text.trim(),
      () => undefined,
    );
  async function write(name: string, value: string): Promise<void> {
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, name), `${value}\n`, { mode: 0o600 });
  }

  return {
    /** Where the demo key is kept, to show in messages and the README's examples. */
    demoKeyPath: join(folder, 'demo-api-key'),

    /** The demo account's key: the kept one while it is valid for `accountId`, else a new one, kept. */
    async demoApiKey(accounts: Pick<AccountsRepository, 'findApiKey' | 'addApiKey'>, accountId: number) {
      const kept = await read('demo-api-key');
      if (kept && looksLikeApiKey(kept)) {
        const record = await accounts.findApiKey(hashApiKey(kept));
        if (record && !record.revoked && record.accountId === accountId) return { apiKey: kept, created: false };
      }
      const created = await accounts.addApiKey(accountId);
      if (!created) throw new Error(`the demo account ${accountId} is gone`);
      await write('demo-api-key', created.apiKey);
      return { apiKey: created.apiKey, created: true };
    },

    /** An operator token of at least 32 characters: the kept one, or a new one, kept. */
    async adminToken(): Promise<string> {
      const kept = await read('admin-token');
      if (kept && kept.length >= 32) return kept;
      const token = randomBytes(24).toString('base64url');
      await write('admin-token', token);
      return token;
    },
  };
}

/** The demo API key `npm start` keeps in `home`, if it has made one (for tools run beside it). */
export async function readDemoApiKey(home: string): Promise<string | undefined> {
  const text = await readFile(join(resolve(PROJECT_ROOT, home), 'demo-api-key'), 'utf8').catch(() => undefined);
  return text?.trim() || undefined;
}
