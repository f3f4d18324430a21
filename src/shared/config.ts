import { z } from 'zod';
import { looksLikeApiKey } from './accounts/api-keys.js';
import { normalizeHost } from './webhooks/address-guard.js';

/** `'true' | 'false'` from the environment; `z.coerce.boolean` would turn "false" into true. */
const booleanString = z.enum(['true', 'false']).transform((value) => value === 'true');

/** Redis key segments and BullMQ queue names may not contain ':' (BullMQ uses it as separator). */
const redisName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "-" and "." only (1-64 characters)');

const int = () => z.coerce.number().int();

/** A Redis Cluster seed node, `host:port` or a redis(s):// URL, as `{ host, port, tls }`. */
const clusterNode = z.string().transform((entry, ctx) => {
  let url: URL | undefined;
  try {
    url = new URL(/^rediss?:\/\//.test(entry) ? entry : `redis://${entry}`);
  } catch {
    // reported below
  }
  if (!url || url.hostname === '' || url.port === '' || url.pathname.length > 1) {
    ctx.addIssue({ code: 'custom', message: `"${entry}" is not host:port or a redis(s):// URL with a port` });
    return z.NEVER;
  }
  if (url.username !== '' || url.password !== '') {
    ctx.addIssue({ code: 'custom', message: `"${entry}": credentials come from REDIS_URL, for every node` });
    return z.NEVER;
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port), tls: url.protocol === 'rediss:' };
});

/** SQS caps one visibility timeout at 12 hours. */
const SQS_MAX_VISIBILITY_SECONDS = 43_200;

const ConfigFields = z.object({
  /** The interface the API and the worker's HTTP endpoint listen on. Default 127.0.0.1 (compose: 0.0.0.0). */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** The API's port; 0 lets the OS pick one. Default 3000. */
  PORT: int().min(0).max(65535).default(3000),
  /**
   * The worker process's own HTTP port, on HOST: `/health/live`, `/health/ready` and, with
   * ADMIN_TOKEN, `/metrics`. 0 lets the OS pick a free one (several workers on one host), named
   * in the worker's `worker started` log line. Not used on Lambda. Default 3001.
   */
  WORKER_HTTP_PORT: int().min(0).max(65535).default(3001),
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' })
    .default('postgres://postgres@127.0.0.1:5432/payonce'),
  DATABASE_POOL_MAX: int().min(1).max(200).default(10),
  /**
   * `npm start` without DATABASE_URL: the port of the embedded PostgreSQL it runs on
   * 127.0.0.1 (user and password `postgres`, database `payonce`). Default 54329, clear of a
   * local server's 5432.
   */
  EMBEDDED_POSTGRES_PORT: int().min(1).max(65535).default(54329),
  /**
   * `npm start` without DATABASE_URL: the folder of its local state, the embedded PostgreSQL's
   * cluster in `postgres/` (kept across restarts). Relative paths count from the project root.
   */
  PAYONCE_HOME: z.string().min(1).default('.payonce'),
  /**
   * Where idempotency claims, in-flight records and the queue live: `redis` (claims and records
   * in Redis, the queue on BullMQ's Redis backend or SQS) or `postgres` (no Redis at all: claims
   * and records in PostgreSQL, the queue on BullMQ's PostgreSQL backend, notifications by
   * LISTEN/NOTIFY). Default: `redis` when REDIS_URL is set, `postgres` otherwise.
   */
  STORE_BACKEND: z.enum(['redis', 'postgres']).optional(),
  /** Redis, for STORE_BACKEND=redis (required there). With REDIS_CLUSTER=true, any node of the cluster. */
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  /**
   * `true` when REDIS_URL names a node of a Redis Cluster (ElastiCache in cluster mode): payonce
   * connects with ioredis' Cluster client and uses the cluster key layout, whose hash tags keep
   * every script's keys in one slot (see src/shared/redis/keys.ts). Default `false`.
   */
  REDIS_CLUSTER: booleanString.default(false),
  /**
   * More seed nodes of the cluster besides REDIS_URL's, comma-separated `host:port` or
   * redis(s):// URLs; the client finds the rest itself. Credentials and TLS come from REDIS_URL.
   * Only with REDIS_CLUSTER=true.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((list) => list.split(',').map((entry) => entry.trim()))
    .pipe(z.array(clusterNode))
    .optional(),
  REDIS_KEY_PREFIX: redisName.default('payonce'),
  REDIS_COMMAND_TIMEOUT_MS: int().min(50).max(60_000).default(500),
  QUEUE_NAME: redisName.default('purchases'),
  IDEMPOTENCY_TTL_SECONDS: int()
    .min(1)
    .max(30 * 24 * 3600)
    .default(300),
  IDEMPOTENCY_PENDING_TTL_SECONDS: int().min(1).max(3600).default(15),
  PAYMENT_DELAY_MS: int().min(0).max(600_000).default(2000),
  PAYMENT_DECLINE_RATE: z.coerce.number().min(0).max(1).default(0),
  /**
   * Where the simulated payment gateway keeps its ledger of charges (`gateway_charges`, created
   * by payonce's migrations). A system of its own, as a real provider is: unset, it is
   * DATABASE_URL's database, reached over a pool of its own.
   */
  GATEWAY_DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional(),
  WORKER_CONCURRENCY: int().min(1).max(10_000).default(50),
  JOB_ATTEMPTS: int().min(1).max(100).default(10),
  JOB_BACKOFF_MS: int().min(1).max(3_600_000).default(1000),
  STALLED_INTERVAL_MS: int().min(100).max(3_600_000).default(30_000),
  LOCK_DURATION_MS: int().min(100).max(3_600_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int().min(0).max(600_000).default(10_000),
  SHUTDOWN_READINESS_DELAY_MS: int().min(0).max(600_000).default(0),
  BODY_LIMIT_BYTES: int()
    .min(256)
    .max(10 * 1024 * 1024)
    .default(16 * 1024),
  /**
   * How long a client may take to send a whole request, headers and body (Node's
   * `requestTimeout`); past it the API answers 408 and closes the connection. The time the API
   * takes to answer, a `Prefer: wait` included, does not count.
   */
  REQUEST_TIMEOUT_MS: int().min(1_000).max(600_000).default(10_000),
  /**
   * How long a client may take to send a request's headers (Node's `headersTimeout`, the
   * slowloris bound); also how long a new connection may stay silent. At most REQUEST_TIMEOUT_MS.
   */
  HEADERS_TIMEOUT_MS: int().min(100).max(600_000).default(5_000),
  /**
   * A connection with no traffic for this long is destroyed, even mid-request (Fastify's
   * `connectionTimeout`): the backstop for clients that stop reading. A `Prefer: wait` request
   * is silent while it waits, so this must exceed the longest wait (30 s).
   */
  CONNECTION_TIMEOUT_MS: int().min(31_000).max(3_600_000).default(60_000),
  /**
   * Most `Prefer: wait` requests one API process holds at once; beyond it a purchase is still
   * accepted but answered 202 at once, without waiting.
   */
  WAIT_MAX_WAITERS: int().min(0).max(100_000).default(1_000),
  /**
   * While requests wait (`Prefer: wait`), how often the API reads their purchases' status in case
   * an announcement was missed (a Redis reconnect): one round for all waiting requests together,
   * 100 purchases per statement, one statement at a time. Announcements answer at once.
   */
  WAIT_POLL_INTERVAL_MS: int().min(100).max(3_600_000).default(2_000),
  /**
   * Most events streams (`GET /payment/purchase/:id/events`) one API process holds open at once;
   * beyond it a stream is refused with 503 TOO_MANY_STREAMS and Retry-After (0 refuses every one).
   */
  STATUS_STREAMS_MAX: int().min(0).max(100_000).default(1_000),
  /**
   * How long an events stream stays open at most, in seconds: a purchase may stay unfinished for
   * long (its retries span minutes), so a stream still open then ends and its client reconnects
   * (the new stream starts with the current status).
   */
  STATUS_STREAM_MAX_SECONDS: int().min(1).max(86_400).default(300),
  /**
   * How often each worker process runs the reconciler (src/worker/reconciler.ts), which
   * completes accepted purchases whose job is gone. 0 turns it off (`npm run reconcile` still
   * works). Every worker runs it; runs on several workers at once are harmless.
   */
  RECONCILE_INTERVAL_MS: int().min(0).max(3_600_000).default(30_000),
  /**
   * How old an accepted purchase without a payment must be before the reconciler looks at it.
   * On SQS, whose queue cannot be asked about one message, the reconciler waits instead for the
   * whole retry schedule (JOB_ATTEMPTS receives, their backoff and visibility timeouts).
   */
  RECONCILE_AFTER_SECONDS: int()
    .min(1)
    .max(30 * 24 * 3600)
    .default(10),
  /**
   * Load shedding: while the API's event loop lags past this (its mean delay over one sample
   * interval, in ms), new requests are answered 503 OVERLOADED with Retry-After, before any work is
   * done for them; `/health/live` and `/metrics` are still served, and `/health/ready` reports the
   * overload. 0 turns it off (the Lambda entry always does).
   */
  EVENT_LOOP_MAX_DELAY_MS: int().min(0).max(60_000).default(1_000),
  /**
   * How often the API measures its event-loop delay: shedding starts and stops at most this long
   * after the lag does, and Retry-After is this in whole seconds (at least 1).
   */
  EVENT_LOOP_SAMPLE_INTERVAL_MS: int().min(10).max(60_000).default(1_000),
  /**
   * The bearer token of the operator routes (`/metrics` of the API and of the worker, the API's
   * `/admin/queues`). Unset: those routes are not registered (404, as any unknown route) and
   * nothing is counted for them. At least 16 characters.
   */
  ADMIN_TOKEN: z.string().min(16, 'at least 16 characters').max(512).optional(),
  /**
   * The demo account's API key, which `npm start` passes to the API it runs (and nothing else
   * sets): the checkout page at /demo then carries it, so it works at once. Unset, the page asks
   * for a key. Whoever can open the page can read it: `npm start` sets it only when HOST is a
   * loopback address.
   */
  DEMO_API_KEY: z.string().refine(looksLikeApiKey, 'must be an API key (pk_live_ and 32 characters)').optional(),
  /**
   * Requests per second one API key may make, counted across every API process (in Redis, or in
   * Postgres on the Postgres backend); past it, 429 RATE_LIMITED. 0 turns the limiter off.
   */
  RATE_LIMIT_MAX: int().min(0).max(1_000_000).default(1000),
  /**
   * Hosts and addresses webhook endpoints may use although they are private, loopback or
   * link-local (comma-separated host names or IP addresses; `[::1]` or `::1` for IPv6). Every
   * other endpoint must resolve to public addresses only. Default: none.
   */
  WEBHOOK_ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((list) => list.split(',').map(normalizeHost).filter(Boolean)),
  /** How long an endpoint may take to answer a delivery; a 2xx within it counts as delivered. */
  WEBHOOK_TIMEOUT_MS: int().min(100).max(60_000).default(10_000),
  /** How long a delivery is retried (exponential backoff) before it is marked failed. */
  WEBHOOK_RETRY_HOURS: z.coerce
    .number()
    .min(0.001)
    .max(24 * 7)
    .default(24),
  /** The first retry delay of a delivery; it doubles with every attempt, up to an hour. */
  WEBHOOK_RETRY_BASE_MS: int().min(100).max(3_600_000).default(5_000),
  /** Worker: how often its webhook dispatcher looks for due deliveries (0: it does not run). */
  WEBHOOK_DISPATCH_INTERVAL_MS: int().min(0).max(3_600_000).default(1_000),
  /** Worker: deliveries one dispatcher sends at once. */
  WEBHOOK_CONCURRENCY: int().min(1).max(1_000).default(20),
  /**
   * Worker: how long past WEBHOOK_TIMEOUT_MS a delivery being sent stays its dispatcher's (time to
   * record the attempt) before another dispatcher may take it. A delivery whose worker died
   * mid-send goes out again this long after the timeout; too short, and a slow Postgres gets a
   * delivery sent twice (harmless to a receiver: the same `webhook-id`). Default 30 s.
   */
  WEBHOOK_LEASE_MARGIN_MS: int().min(500).max(600_000).default(30_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: booleanString.optional(),
  /** Which queue carries purchase jobs: BullMQ on the Redis above, or an SQS FIFO queue (AWS). */
  QUEUE_DRIVER: z.enum(['bullmq', 'sqs']).default('bullmq'),
  /** The SQS FIFO queue's URL; required with QUEUE_DRIVER=sqs. */
  SQS_QUEUE_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s):// queue URL' }).optional(),
  /**
   * Long-poll wait of the SQS worker process (ReceiveMessage WaitTimeSeconds). A shutdown waits
   * for the current poll, so keep it below SHUTDOWN_TIMEOUT_MS.
   */
  SQS_WAIT_TIME_SECONDS: int().min(0).max(20).default(5),
  /** How long a received message stays hidden from other workers; the worker extends it while the job runs. */
  SQS_VISIBILITY_TIMEOUT_SECONDS: int().min(5).max(SQS_MAX_VISIBILITY_SECONDS).default(30),
  /** Upper bound of the retry delay of a failed SQS message (JOB_BACKOFF_MS doubles up to this). */
  SQS_MAX_BACKOFF_SECONDS: int().min(0).max(SQS_MAX_VISIBILITY_SECONDS).default(900),
  /**
   * A Secrets Manager secret (JSON object of environment variables, e.g. DATABASE_URL and
   * REDIS_URL) that the entries merge over the environment before this schema runs. Listed here
   * so a malformed value is reported like any other.
   */
  APP_SECRET_ARN: z.string().startsWith('arn:', 'must be a Secrets Manager ARN').optional(),
  /**
   * The migration Lambda only: the application role the API and the worker connect as, which it
   * creates (or whose password it sets) after migrating, with rights on payonce's tables only
   * (src/migrate/app-role.ts). Set together with APP_DATABASE_PASSWORD; unset, it makes no role.
   */
  APP_DATABASE_ROLE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lowercase letters, digits and "_", not starting with a digit (1-63)')
    .optional(),
  /** The migration Lambda only: the application role's password. At least 16 characters. */
  APP_DATABASE_PASSWORD: z.string().min(16, 'at least 16 characters').max(1024).optional(),
});

type StoreBackend = 'redis' | 'postgres';

/** STORE_BACKEND as set, or `redis` when REDIS_URL is set and `postgres` otherwise. */
const storeBackendOf = (env: { STORE_BACKEND?: StoreBackend | undefined; REDIS_URL?: string | undefined }) =>
  env.STORE_BACKEND ?? (env.REDIS_URL === undefined ? 'postgres' : 'redis');

const ConfigSchema = ConfigFields.superRefine(
  // Runs even when other fields are invalid, so this problem is reported together with them.
  (env, ctx) => {
    const backend = storeBackendOf(env);
    if (backend === 'redis' && env.REDIS_URL === undefined) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: 'required when STORE_BACKEND=redis' });
    }
    if (env.REDIS_CLUSTER && backend !== 'redis') {
      ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER'], message: 'true needs STORE_BACKEND=redis' });
    }
    if (env.REDIS_CLUSTER_NODES !== undefined && !env.REDIS_CLUSTER) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: 'only with REDIS_CLUSTER=true' });
    }
    // TLS is one setting for the whole cluster, REDIS_URL's: a node that says otherwise is a mistake.
    const tls = env.REDIS_URL?.startsWith('rediss:') ?? false;
    if (env.REDIS_CLUSTER_NODES?.some((node) => node.tls !== tls)) {
      ctx.addIssue({
        code: 'custom',
        path: ['REDIS_CLUSTER_NODES'],
        message: `every node must use ${tls ? 'rediss://' : 'redis:// or host:port'}, as REDIS_URL does`,
      });
    }
    // The SQS producer remembers what it sent under each key in Redis (sqs-purchase-producer.ts).
    if (backend === 'postgres' && env.QUEUE_DRIVER === 'sqs') {
      ctx.addIssue({ code: 'custom', path: ['QUEUE_DRIVER'], message: 'sqs needs STORE_BACKEND=redis' });
    }
    if (env.QUEUE_DRIVER === 'sqs' && env.SQS_QUEUE_URL === undefined) {
      ctx.addIssue({ code: 'custom', path: ['SQS_QUEUE_URL'], message: 'required when QUEUE_DRIVER=sqs' });
    }
    if ((env.APP_DATABASE_ROLE === undefined) !== (env.APP_DATABASE_PASSWORD === undefined)) {
      const missing = env.APP_DATABASE_ROLE === undefined ? 'APP_DATABASE_ROLE' : 'APP_DATABASE_PASSWORD';
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message: 'set APP_DATABASE_ROLE and APP_DATABASE_PASSWORD together',
      });
    }
    // Node would accept it and never apply the headers bound.
    if (env.HEADERS_TIMEOUT_MS > env.REQUEST_TIMEOUT_MS) {
      ctx.addIssue({ code: 'custom', path: ['HEADERS_TIMEOUT_MS'], message: 'must not exceed REQUEST_TIMEOUT_MS' });
    }
  },
  { when: () => true },
).transform((env) =>
  // The refinement above has made sure REDIS_URL is set for the Redis backend.
  storeBackendOf(env) === 'redis'
    ? { ...env, STORE_BACKEND: 'redis' as const, REDIS_URL: env.REDIS_URL! }
    : { ...env, STORE_BACKEND: 'postgres' as const },
);

/**
 * The parsed configuration. STORE_BACKEND is always decided, and with `redis` REDIS_URL is set:
 * narrow on `config.STORE_BACKEND === 'redis'` to read it as a string.
 */
export type Config = Readonly<z.output<typeof ConfigSchema>>;

/** Every environment variable the configuration reads (`.env.example` and compose list them). */
export const CONFIG_KEYS: readonly string[] = Object.keys(ConfigFields.shape);

/** Thrown when the environment does not describe a valid configuration; lists every problem. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses the environment once into a frozen, typed configuration.
 * Empty strings count as unset, so `PORT=` falls back to the default.
 * @throws ConfigError naming every invalid variable at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = ConfigSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `  - ${issue.path.join('.') || '(environment)'}: ${issue.message}`,
    );
    throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  }
  return Object.freeze(parsed.data);
}

/** For process entry files: the configuration, or a clear message and exit code 1. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

// Secrets: entries that run where credentials live in Secrets Manager merge them in first.

/** A secret's value: a JSON object of environment variables (strings; numbers and booleans are stringified). */
const SecretEnvironment = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name'),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);

/** Reads a secret's string value; the default reads it from AWS Secrets Manager. */
export type SecretReader = (secretId: string) => Promise<string | undefined>;

/** Reads a secret with @aws-sdk/client-secrets-manager, loaded only when a secret is configured. */
const readFromSecretsManager: SecretReader = async (secretId) => {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({});
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    return SecretString;
  } finally {
    client.destroy();
  }
};

/**
 * The environment with the `APP_SECRET_ARN` secret merged over it, for entries that run where
 * credentials live in Secrets Manager (Lambda): the secret is a JSON object of environment
 * variables such as DATABASE_URL and REDIS_URL. Without APP_SECRET_ARN it returns `env` as is and
 * loads nothing. Call it once per process or container, before `loadConfig`. `process.env`
 * itself is not changed, so secrets never leak into child processes.
 * @throws Error naming the secret when it cannot be read or is not such an object.
 */
export async function loadAppSecrets(
  env: NodeJS.ProcessEnv = process.env,
  readSecret: SecretReader = readFromSecretsManager,
): Promise<NodeJS.ProcessEnv> {
  const secretId = env.APP_SECRET_ARN;
  if (!secretId) return env;
  const failed = (reason: string, cause?: unknown) =>
    new Error(`Could not load APP_SECRET_ARN ${secretId}: ${reason}`, { cause });
  let value: string | undefined;
  try {
    value = await readSecret(secretId);
  } catch (error) {
    throw failed(String(error), error);
  }
  if (value === undefined) throw failed('the secret has no string value');
  // Neither reason quotes the value: JSON.parse's message would show part of the secret.
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw failed('its value is not valid JSON');
  }
  const parsed = SecretEnvironment.safeParse(json);
  if (!parsed.success) throw failed('its value is not a JSON object of environment variables');
  return { ...env, ...parsed.data };
}

/**
 * Every process entry's configuration (API, worker, npm start, migrate, seed): the environment
 * with APP_SECRET_ARN's secret merged over it, validated; or a clear message and exit code 1.
 */
export async function loadProcessConfigOrExit(): Promise<Config> {
  return loadConfigOrExit(await loadAppSecretsOrExit());
}

/**
 * For process entries: the merged environment, or a clear message and exit code 1. `npm start`
 * reads it to tell a set DATABASE_URL from the default.
 */
export async function loadAppSecretsOrExit(env: NodeJS.ProcessEnv = process.env): Promise<NodeJS.ProcessEnv> {
  try {
    return await loadAppSecrets(env);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}

/**
 * The configuration of a Lambda container: the APP_SECRET_ARN secret merged over the
 * environment, then parsed like any process's. Logs are always JSON lines there (CloudWatch
 * reads them, and the bundles do not ship pino-pretty), and load shedding is off.
 * @throws ConfigError or the secret's load error; Lambda reports it as an init failure.
 */
export async function loadLambdaConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const merged = await loadAppSecrets(env);
  // No load shedding: a container serves one request at a time (Lambda scales by adding
  // containers), and a thawed container's first timer would count its frozen time as lag.
  return loadConfig({ ...merged, LOG_PRETTY: 'false', EVENT_LOOP_MAX_DELAY_MS: '0' });
}
