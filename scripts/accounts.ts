import { parseArgs } from 'node:util';
import { createAccountsRepository } from '../src/shared/accounts/accounts-repository.js';
import { loadProcessConfigOrExit } from '../src/shared/config.js';
import { createDb } from '../src/shared/db.js';

/**
 * Accounts and API keys, for operators; each prints one JSON line on stdout (a key is shown
 * once, here, and never again):
 *
 *   npm run -s account:create -- --name NAME   {"accountId":…,"apiKey":"pk_live_…","keyPrefix":"pk_live_…"}
 *   npm run -s apikey:create -- --account ID   {"accountId":…,"apiKey":"pk_live_…","keyPrefix":"pk_live_…"}
 *   npm run -s apikey:revoke -- KEY_PREFIX     {"revoked":"pk_live_…"}
 *
 * A revoked key is refused by every API process within a second. Exit codes: 0 done, 1 nothing to
 * act on (no such account or key), 2 bad usage.
 */
const [command, ...rest] = process.argv.slice(2);
const { values, positionals } = parseArgs({
  args: rest,
  options: { name: { type: 'string' }, account: { type: 'string' } },
  allowPositionals: true,
});

function usage(message: string): never {
  console.error(
    `${message}\nusage: account:create --name NAME | apikey:create --account ID | apikey:revoke KEY_PREFIX`,
  );
  process.exit(2);
}

const config = await loadProcessConfigOrExit();
const db = createDb(config);
const accounts = createAccountsRepository({ db });
let exitCode = 0;
try {
  switch (command) {
    case 'account:create': {
      const name = values.name?.trim();
      if (!name || name.length > 200) usage('--name takes 1 to 200 characters');
      console.log(JSON.stringify(await accounts.createAccount(name)));
      break;
    }
    case 'apikey:create': {
      const accountId = Number(values.account);
      if (!Number.isInteger(accountId) || accountId <= 0) usage('--account takes an account id');
      const created = await accounts.addApiKey(accountId);
      if (created) console.log(JSON.stringify(created));
      else {
        console.error(`no account ${accountId}`);
        exitCode = 1;
      }
      break;
    }
    case 'apikey:revoke': {
      const [keyPrefix] = positionals;
      if (!keyPrefix) usage('give the key prefix to revoke');
      if (await accounts.revokeApiKey(keyPrefix)) console.log(JSON.stringify({ revoked: keyPrefix }));
      else {
        console.error(`no unrevoked key has the prefix ${keyPrefix} (a key's first 16 characters)`);
        exitCode = 1;
      }
      break;
    }
    default:
      usage(`unknown command ${command ?? '(none)'}`);
  }
} finally {
  await db.destroy();
}
process.exit(exitCode);
