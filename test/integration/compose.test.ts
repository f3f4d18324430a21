import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DCLinter } from 'dclint';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_KEYS, loadConfig } from '../../src/shared/config.js';

/*
 * The deployment files, checked offline: no Docker engine runs here or in CI. dclint bundles the
 * compose-spec JSON schema; the rest are the properties payonce relies on.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPOSE_PATH = join(ROOT, 'docker-compose.yml');
const APP_SERVICES = ['migrate', 'api', 'worker'] as const;

interface HealthCheck {
  test?: string | string[];
  disable?: boolean;
}
interface DependsOn {
  condition: string;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  container_name?: string;
  ports?: unknown[];
  expose?: Array<string | number>;
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: Record<string, DependsOn>;
  healthcheck?: HealthCheck;
  restart?: string;
  stop_grace_period?: string;
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

// YAML merge keys (`<<: *anchor`) are how the file shares the image and environment.
const compose = parse(readFileSync(COMPOSE_PATH, 'utf8'), { merge: true }) as ComposeFile;

function service(name: string): Service {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

/** The service's environment as strings, as a container sees it. */
function environmentOf(name: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service(name).environment ?? {}).map(([key, value]) => [key, String(value ?? '')]),
  );
}

/** A command as its argument list (compose accepts a string or a list). */
function argv(command: string | string[] | undefined): string[] {
  if (command === undefined) return [];
  return Array.isArray(command) ? command : command.split(/\s+/).filter(Boolean);
}

/** Compose durations such as `1m30s`, `20s`, `500ms`, in milliseconds. */
function durationMs(value: string | undefined): number {
  if (value === undefined) return 10_000; // Docker's default before SIGKILL
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== value) {
    throw new Error(`not a compose duration: ${value}`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * units[unit!]!, 0);
}

/** Variable names declared in the ConfigSchema of src/shared/config.ts. */
function configKeys(): Set<string> {
  // NODE_ENV is Node's convention, read by libraries rather than by payonce's config.
  return new Set(['NODE_ENV', ...CONFIG_KEYS]);
}

/** What dclint reports; its bundled typings use extensionless imports that nodenext cannot follow. */
interface LintMessage {
  rule: string;
  type: 'error' | 'warning';
  message: string;
  line: number;
}

/** dclint's errors for one file: YAML syntax, the compose schema, then its error-level rules. */
function lintMessages(path: string): LintMessage[] {
  const linter = new DCLinter({
    // Every other rule stays at its default level; warnings are style opinions (key order), ignored.
    // Sharing `build` and `image` is deliberate: compose builds payonce:local once for three services.
    rules: { 'no-build-and-image': 0 },
    quiet: true,
    debug: false,
    exclude: [],
  });
  const [result] = linter.lintFiles([path], false) as Array<{ messages: LintMessage[] }>;
  if (!result) throw new Error(`dclint did not lint ${path}`);
  return result.messages.filter((message) => message.type === 'error');
}

describe('docker-compose.yml against the compose specification', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'payonce-compose-'));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function writeCopy(name: string, document: unknown): Promise<string> {
    const path = join(scratch, `${name}.docker-compose.yml`);
    await writeFile(path, stringify(document));
    return path;
  }

  it('is valid YAML, valid compose and free of dclint errors', () => {
    expect(lintMessages(COMPOSE_PATH)).toEqual([]);
  });

  it('stays valid once its anchors are expanded (the baseline for the broken copies)', async () => {
    expect(lintMessages(await writeCopy('expanded', compose))).toEqual([]);
  });

  const breakages: Array<[string, (copy: ComposeFile) => void]> = [
    ['an unknown top-level key', (copy) => Object.assign(copy, { servers: copy.services })],
    ['ports that are not a list', (copy) => Object.assign(copy.services.api!, { ports: 'nope' })],
    [
      'an unknown depends_on condition',
      (copy) => Object.assign(copy.services.worker!.depends_on!, { migrate: { condition: 'service_finished' } }),
    ],
    ['an unknown service key', (copy) => Object.assign(copy.services.redis!, { comand: 'redis-server' })],
  ];

  it.each(breakages)('rejects a copy with %s', async (name, breakIt) => {
    const copy = structuredClone(compose);
    breakIt(copy);
    const errors = lintMessages(await writeCopy(name.replace(/\W+/g, '-'), copy));
    expect(errors.map((error) => error.rule)).toContain('invalid-schema');
  });
});

describe('docker-compose.yml: what payonce relies on', () => {
  it('runs Redis with an append-only file and no eviction (BullMQ requires noeviction)', () => {
    const command = argv(service('redis').command);
    expect(command[0]).toBe('redis-server');
    expect(command.join(' ')).toMatch(/--appendonly yes\b/);
    expect(command.join(' ')).toMatch(/--maxmemory-policy noeviction\b/);
  });

  it('keeps Postgres and Redis data in named volumes and checks their health', () => {
    for (const name of ['postgres', 'redis']) {
      const volumes = service(name).volumes ?? [];
      expect(volumes.length, name).toBeGreaterThan(0);
      for (const volume of volumes) expect(Object.keys(compose.volumes ?? {})).toContain(volume.split(':')[0]);
      expect(argv(service(name).healthcheck?.test).length, name).toBeGreaterThan(1);
    }
    expect(argv(service('postgres').healthcheck?.test)).toContain('pg_isready');
    expect(argv(service('redis').healthcheck?.test)).toContain('ping');
  });

  it('builds one image for migrate, api and worker', () => {
    const [first, ...others] = APP_SERVICES.map(service);
    expect(first!.build).toBeDefined();
    expect(first!.image).toBeDefined();
    for (const other of others) {
      expect(other.build).toEqual(first!.build);
      expect(other.image).toBe(first!.image);
    }
  });

  it('migrates, then seeds, once Postgres is healthy, and never restarts', () => {
    const migrate = service('migrate');
    expect(migrate.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(migrate.restart).toBe('no');
    const script = argv(migrate.command).join(' ');
    expect(script).toMatch(/node dist\/scripts\/migrate\.js && node dist\/scripts\/seed\.js/);
  });

  it('starts the API and the workers only after the migration succeeded and Redis is healthy', () => {
    for (const name of ['api', 'worker']) {
      expect(service(name).depends_on?.migrate?.condition, name).toBe('service_completed_successfully');
      expect(service(name).depends_on?.redis?.condition, name).toBe('service_healthy');
    }
  });

  it('lets workers scale: no container_name and no host ports', () => {
    const worker = service('worker');
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    expect(argv(worker.command)).toEqual(['node', 'dist/src/worker/main.js']);
  });

  it("health-checks each worker's /health/ready on WORKER_HTTP_PORT, reachable from the compose network", () => {
    const worker = service('worker');
    const config = loadConfig(environmentOf('worker'));
    expect(config.HOST).toBe('0.0.0.0');
    expect(config.WORKER_HTTP_PORT).toBeGreaterThan(0);
    expect((worker.expose ?? []).map(String)).toEqual([String(config.WORKER_HTTP_PORT)]);
    const probe = argv(worker.healthcheck?.test).join(' ');
    expect(probe).toContain(`http://127.0.0.1:${config.WORKER_HTTP_PORT}/health/ready`);
    // The probe fails unless the answer is 2xx: readiness is 503 while a dependency is down.
    expect(probe).toMatch(/process\.exit\(r\.ok \? 0 : 1\)/);
    expect(worker.healthcheck?.disable).not.toBe(true);
  });

  it('publishes the API on port 3000, listening on every interface inside its container', () => {
    const api = service('api');
    expect(api.ports?.map(String)).toEqual([expect.stringMatching(/(^|:)3000:3000$/)]);
    expect(environmentOf('api')).toMatchObject({ HOST: '0.0.0.0', PORT: '3000' });
    expect(argv(api.healthcheck?.test).join(' ')).toContain('http://127.0.0.1:3000/health/ready');
  });

  it('gives every process an environment that src/shared/config.ts accepts, with no unknown names', () => {
    const known = configKeys();
    expect(known.size).toBeGreaterThan(10);
    for (const name of APP_SERVICES) {
      const env = environmentOf(name);
      expect(
        Object.keys(env).filter((key) => !known.has(key)),
        name,
      ).toEqual([]);
      expect(env.NODE_ENV, name).toBe('production');
      expect(loadConfig(env).LOG_PRETTY, name).toBe(false);
    }
    // The API and the worker meet in Redis and Postgres: same prefix, queue and stores.
    const api = loadConfig(environmentOf('api'));
    const worker = loadConfig(environmentOf('worker'));
    for (const key of ['REDIS_KEY_PREFIX', 'QUEUE_NAME', 'DATABASE_URL', 'REDIS_URL'] as const) {
      expect(worker[key], key).toBe(api[key]);
    }
  });

  it('points DATABASE_URL and REDIS_URL at the compose services with matching credentials', () => {
    const postgres = environmentOf('postgres');
    const config = loadConfig(environmentOf('api'));
    const database = new URL(config.DATABASE_URL);
    expect(database.hostname).toBe('postgres');
    expect(decodeURIComponent(database.username)).toBe(postgres.POSTGRES_USER ?? 'postgres');
    expect(decodeURIComponent(database.password)).toBe(postgres.POSTGRES_PASSWORD);
    expect(config.STORE_BACKEND).toBe('redis');
    expect(new URL(config.REDIS_URL ?? '').hostname).toBe('redis');
  });

  it('waits longer than each process takes to shut down before killing it', () => {
    const api = loadConfig(environmentOf('api'));
    expect(durationMs(service('api').stop_grace_period)).toBeGreaterThan(
      api.SHUTDOWN_READINESS_DELAY_MS + api.SHUTDOWN_TIMEOUT_MS,
    );
    // src/worker/main.ts exits by force 5 s after SHUTDOWN_TIMEOUT_MS.
    const worker = loadConfig(environmentOf('worker'));
    expect(durationMs(service('worker').stop_grace_period)).toBeGreaterThan(worker.SHUTDOWN_TIMEOUT_MS + 5_000);
  });

  it('runs entry files that the build produces', () => {
    const commands = APP_SERVICES.map((name) => argv(service(name).command).join(' '));
    const entries = commands.flatMap((command) => [...command.matchAll(/dist\/(\S+)\.js/g)].map((m) => m[1]!));
    expect(entries).toEqual(
      expect.arrayContaining(['scripts/migrate', 'scripts/seed', 'src/api/server', 'src/worker/main']),
    );
    for (const entry of entries) expect(existsSync(join(ROOT, `${entry}.ts`)), entry).toBe(true);
  });
});

/** Dockerfile instructions with line continuations joined, grouped by stage. */
function dockerfileStages(source: string): Array<{ from: string; instructions: Array<[string, string]> }> {
  const lines = source
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Array<{ from: string; instructions: Array<[string, string]> }> = [];
  for (const line of lines) {
    const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') stages.push({ from: rest, instructions: [] });
    else stages.at(-1)?.instructions.push([keyword.toUpperCase(), rest]);
  }
  return stages;
}

describe('Dockerfile', () => {
  const stages = dockerfileStages(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const final = stages.at(-1)!;
  const all = (stage: (typeof stages)[number], keyword: string) =>
    stage.instructions.filter(([k]) => k === keyword).map(([, rest]) => rest);

  it('builds in one stage and runs from another, both on Node 22', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.from).toMatch(/^node:22(-[\w.-]+)?(@sha256:[0-9a-f]{64})?(\s|$)/);
    const build = stages[0]!;
    expect(all(build, 'RUN').join('\n')).toMatch(/npm ci/);
    expect(all(build, 'RUN').join('\n')).toMatch(/npm run build/);
  });

  it('ships production dependencies and the compiled output only', () => {
    const runs = all(final, 'RUN').join('\n');
    expect(runs).toMatch(/npm ci\b.*--omit=dev/);
    expect(runs).not.toMatch(/npm run build|tsc/);
    expect(all(final, 'COPY').some((copy) => /--from=\S+.*\/dist\s/.test(`${copy} `))).toBe(true);
    expect(all(final, 'ENV').join(' ')).toMatch(/NODE_ENV=production/);
  });

  it('runs as a user that is not root', () => {
    const user = all(final, 'USER').at(-1);
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
  });

  it('starts the API by default', () => {
    expect(all(final, 'CMD').at(-1)).toBe('["node", "dist/src/api/server.js"]');
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  it('keeps host builds, dependencies and secrets out of the build context', () => {
    expect(patterns).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git', '.env']));
  });

  it('keeps what the build stage copies', () => {
    // Docker's pattern syntax, enough of it for top-level names: `*`, `?` and `**`.
    const toRegExp = (pattern: string) =>
      new RegExp(
        `^${pattern
          .replace(/^\/|\/$/g, '')
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*/g, '\0')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/\0/g, '.*')}$`,
      );
    const excludes = patterns.filter((pattern) => !pattern.startsWith('!')).map(toRegExp);
    const copied = [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'src',
      'migrations',
      'seeds',
      'scripts',
    ];
    expect(copied.filter((name) => excludes.some((exclude) => exclude.test(name)))).toEqual([]);
  });
});
