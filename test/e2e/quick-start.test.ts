import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { embeddedDataDir, startEmbeddedPostgres, type EmbeddedPostgres } from '../../scripts/lib/embedded-postgres.js';
import { PROJECT_ROOT } from '../../scripts/lib/processes.js';
import { isRunning, processStat } from '../support/npm-start.js';
import { freePort } from '../support/processes.js';
import { eventually } from '../support/services.js';

const isRoot = process.getuid?.() === 0;
const homes: string[] = [];
/** Processes to end if a test fails half-way: only ours, by pid. */
const started = new Set<number>();

afterEach(async () => {
  for (const pid of started) {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  }
  started.clear();
  await Promise.all(homes.splice(0).map((home) => rm(home, { recursive: true, force: true })));
});

/** A data folder (PAYONCE_HOME) of the test's own. */
async function newHome(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'payonce-home-'));
  homes.push(home);
  // As root the server runs as the postgres OS user, which must reach its folder; mkdtemp makes 0700.
  await chmod(home, 0o755);
  return home;
}

/** The pids of `pid`'s child processes (Linux: from /proc). */
function childPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && processStat(Number(entry))?.ppid === pid)
    .map(Number);
}

/** Waits briefly for `pids` to be gone: pg_ctl returns once the server removed its pid file, just before it exits. */
async function stopped(pids: number[]): Promise<void> {
  await eventually(() => (pids.some(isRunning) ? undefined : true), {
    timeoutMs: 2_000,
    what: `PostgreSQL processes ${pids.filter(isRunning).join(', ')} to exit`,
  }).catch((error: Error) => expect.fail(error.message));
}

/** The cluster's identity, which initdb draws at random: the same value means the same cluster. */
async function systemIdentifier(server: EmbeddedPostgres): Promise<string> {
  const url = new URL(server.url);
  url.pathname = '/postgres';
  const client = new pg.Client(url.toString());
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>(
      'select system_identifier::text as id from pg_control_system()',
    );
    return rows[0]!.id;
  } finally {
    await client.end();
  }
}

describe('the embedded PostgreSQL (scripts/lib/embedded-postgres.ts)', () => {
  it('creates its cluster on the first start only, refuses a second server on it, and stops without leftovers', async () => {
    const dataDir = embeddedDataDir(await newHome());
    const port = await freePort();

    const first = await startEmbeddedPostgres(dataDir, port);
    started.add(first.pid);
    expect(first.initialised).toBe(true);
    expect(first.url).toBe(`postgres://postgres:postgres@127.0.0.1:${port}/payonce`);
    const cluster = await systemIdentifier(first);
    await first.stop();
    await stopped([first.pid]);

    const second = await startEmbeddedPostgres(dataDir, port);
    started.add(second.pid);
    expect(second.initialised).toBe(false);
    expect(await systemIdentifier(second)).toBe(cluster);
    await expect(startEmbeddedPostgres(dataDir, port)).rejects.toThrow(
      `already runs on ${dataDir} (PID ${second.pid})`,
    );

    const processes = [second.pid, ...childPids(second.pid)];
    // The postmaster and its own: checkpointer, background writer, WAL writer and others.
    expect(processes.length).toBeGreaterThan(3);
    await second.stop();
    await second.stop(); // idempotent
    await stopped(processes);
  }, 30_000);
});

describe.skipIf(!isRoot)('npm start on a fresh machine (root: a network namespace of its own)', () => {
  it('serves a purchase, charges a burst of duplicates once, stops cleanly and keeps its data for the next start', async () => {
    const home = await newHome();
    // `ip link set lo up`: a new namespace's loopback is down. The scenario reports the pids it
    // learns of as it goes, so whatever a killed or failed run leaves can be ended here.
    const scenario = spawn(
      'unshare',
      [
        '--net',
        'sh',
        '-c',
        'ip link set lo up && exec "$@"',
        'sh',
        process.execPath,
        '--import',
        'tsx',
        'test/support/quick-start-scenario.ts',
        home,
      ],
      { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    started.add(scenario.pid!);
    let output = '';
    scenario.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const [, pid] of output.matchAll(/^PID (\d+)$/gm)) started.add(Number(pid));
    });
    scenario.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => scenario.once('exit', resolve));
    const result = /^RESULT (.*)$/m.exec(output)?.[1];
    expect(result, `the scenario exited with ${code}:\n${output}`).toBeDefined();

    const { first, second } = JSON.parse(result!);
    const printed = [
      'API:      http://127.0.0.1:3000',
      'worker:   http://127.0.0.1:3001 (/health/live, /health/ready, /metrics)',
      `database: postgres://postgres:postgres@127.0.0.1:54329/payonce (embedded PostgreSQL on this machine, data in ${home}/postgres)`,
      // A fresh machine has no Redis, and npm start needs none.
      'Redis:    not used (STORE_BACKEND=postgres: claims, in-flight state and the queue live in PostgreSQL)',
    ];
    const burstRows = { purchases: 1, payments: 1, charges: 1 };
    // The demo account's key, printed and kept: the second start prints the same one.
    expect(first.apiKey).toMatch(/^pk_live_[A-Za-z0-9_-]{32}$/);
    expect(first).toEqual({
      initialised: true,
      seeded: true,
      apiKey: first.apiKey,
      printed,
      waited: { status: 200, purchase: 'succeeded' },
      burst: { 202: 1, 204: 19 },
      burstLocations: 1,
      burstOutcome: 'succeeded',
      workerReady: 200,
      rows: burstRows,
      exitCode: 0,
      cleanShutdowns: 2,
      serverStoppedLast: true,
      leftovers: [],
    });
    expect(second).toEqual({
      initialised: false,
      seeded: false,
      apiKey: first.apiKey,
      printed,
      earlier: { status: 200, purchase: 'succeeded' },
      rows: burstRows,
      exitCode: 0,
      cleanShutdowns: 2,
      serverStoppedLast: true,
      leftovers: [],
    });
    expect(code).toBe(0);
  }, 120_000);
});
