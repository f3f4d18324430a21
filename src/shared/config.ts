import { z } from 'zod';

/** `'true' | 'false'` from the environment; `z.coerce.boolean` would turn "false" into true. */
const booleanString = z.enum(['true', 'false']).transform((value) => value === 'true');

/** Redis key segments and BullMQ queue names may not contain ':' (BullMQ uses it as separator). */
const redisName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "-" and "." only (1-64 characters)');

const int = () => z.coerce.number().int();

/** SQS caps one visibility timeout at 12 hours. */
const SQS_MAX_VISIBILITY_SECONDS = 43_200;

const ConfigSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int().min(0).max(65535).default(3000),
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' })
    .default('postgres://postgres@127.0.0.1:5432/payonce'),
  DATABASE_POOL_MAX: int().min(1).max(200).default(10),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: redisName.default('payonce'),
  REDIS_COMMAND_TIMEOUT_MS: int().min(50).max(60_000).default(500),
  QUEUE_NAME: redisName.default('purchases'),
  IDEMPOTENCY_TTL_SECONDS: int().min(1).max(30 * 24 * 3600).default(300),
  IDEMPOTENCY_PENDING_TTL_SECONDS: int().min(1).max(3600).default(15),
  PAYMENT_DELAY_MS: int().min(0).max(600_000).default(2000),
  PAYMENT_DECLINE_RATE: z.coerce.number().min(0).max(1).default(0),
  WORKER_CONCURRENCY: int().min(1).max(10_000).default(50),
  JOB_ATTEMPTS: int().min(1).max(100).default(10),
  JOB_BACKOFF_MS: int().min(1).max(3_600_000).default(1000),
  STALLED_INTERVAL_MS: int().min(100).max(3_600_000).default(30_000),
  LOCK_DURATION_MS: int().min(100).max(3_600_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int().min(0).max(600_000).default(10_000),
  SHUTDOWN_READINESS_DELAY_MS: int().min(0).max(600_000).default(0),
  BODY_LIMIT_BYTES: int().min(256).max(10 * 1024 * 1024).default(16 * 1024),
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
}).superRefine(
  // Runs even when other fields are invalid, so this problem is reported together with them.
  (env, ctx) => {
    if (env.QUEUE_DRIVER === 'sqs' && env.SQS_QUEUE_URL === undefined) {
      ctx.addIssue({ code: 'custom', path: ['SQS_QUEUE_URL'], message: 'required when QUEUE_DRIVER=sqs' });
    }
  },
  { when: () => true },
);

export type Config = Readonly<z.output<typeof ConfigSchema>>;

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
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
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
