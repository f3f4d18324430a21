import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAppSecretsOrExit, loadConfigOrExit } from '../src/shared/config.js';
import { embeddedDataDir, embeddedDatabaseUrl } from './lib/embedded-postgres.js';

/**
 * `npm run db:ui`: psql on the database npm start uses. That is the embedded server's when
 * DATABASE_URL is unset and PAYONCE_HOME holds its cluster, otherwise DATABASE_URL (default the
 * local server). It does not start the embedded server: npm start owns it, and would find it
 * taken. psql is the machine's own (embedded-postgres ships none); arguments go to it.
 */
const env = await loadAppSecretsOrExit();
const config = loadConfigOrExit(env);

let url = config.DATABASE_URL;
const dataDir = embeddedDataDir(config.PAYONCE_HOME);
if (!env.DATABASE_URL && existsSync(dataDir)) {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) {
    console.error(`The embedded PostgreSQL in ${dataDir} is not running; npm start starts it.`);
    process.exit(1);
  }
  // The port the running server took (postmaster.pid's fourth line), whatever this shell's
  // EMBEDDED_POSTGRES_PORT says.
  url = embeddedDatabaseUrl(Number(readFileSync(pidFile, 'utf8').split('\n')[3]));
}

// A Ctrl-C at the terminal is psql's (it cancels the running query), not a reason to leave.
process.on('SIGINT', () => undefined);
spawn('psql', [url, ...process.argv.slice(2)], { stdio: 'inherit' })
  .on('error', (error) => {
    console.error(`could not run psql (a PostgreSQL client must be installed): ${error.message}`);
    process.exit(1);
  })
  .on('exit', (code) => process.exit(code ?? 1));
