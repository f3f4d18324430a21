import { createTestDatabase, deleteKeys, TEST_REDIS_URL, testConfig, type TestDatabase } from './services.js';
import { startTestSqs, type TestFifoQueue, type TestSqs } from './sqs.js';

/** What a Lambda test file runs its handlers against; see `startLambdaEnvironment`. */
export interface LambdaEnvironment {
  sqs: TestSqs;
  queue: TestFifoQueue;
  database: TestDatabase;
  prefix: string;
  /** Puts `process.env` back and removes the database, the keys and the emulator (close the handlers first). */
  close(): Promise<void>;
}

/**
 * The environment infra/main.tf gives the functions, pointed at this machine's Postgres and Redis
 * and a fauxqs queue of the file's own (no APP_SECRET_ARN), set on `process.env` for the handlers
 * loaded in this process. `env` goes over it.
 */
export async function startLambdaEnvironment(options: {
  maxReceiveCount: number;
  visibilityTimeoutSeconds?: number;
  env?: Record<string, string>;
}): Promise<LambdaEnvironment> {
  const savedEnv = { ...process.env };
  const [sqs, database] = await Promise.all([startTestSqs(), createTestDatabase()]);
  const queue = await sqs.createFifoQueue({
    maxReceiveCount: options.maxReceiveCount,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
  });
  const prefix = testConfig().REDIS_KEY_PREFIX;
  Object.assign(process.env, {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.url,
    GATEWAY_DATABASE_URL: database.url,
    DATABASE_POOL_MAX: '2',
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    PAYMENT_DELAY_MS: '0',
    JOB_ATTEMPTS: String(options.maxReceiveCount),
    ...sqs.processEnv(queue),
    ...options.env,
  });
  return {
    sqs,
    queue,
    database,
    prefix,
    async close() {
      process.env = savedEnv;
      await database.drop();
      await deleteKeys(prefix);
      await sqs.stop();
    },
  };
}
