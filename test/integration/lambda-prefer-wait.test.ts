import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeContainer, handler, LAMBDA_MAX_WAIT_SECONDS } from '../../src/api/lambda.js';
import { httpApiEvent, lambdaContext } from '../support/lambda-events.js';
import {
  createTestDatabase,
  deleteKeys,
  seedUserAndProduct,
  TEST_REDIS_URL,
  testConfig,
  type TestDatabase,
} from '../support/services.js';

/** API Gateway HTTP APIs end an integration this long after they received the request. */
const API_GATEWAY_TIMEOUT_MS = 30_000;

/**
 * `Prefer: wait` on the API Lambda, invoked in-process with real-shaped events on real Postgres
 * and Redis. No worker runs, so every wait lasts as long as the Lambda lets it.
 */
describe('Prefer: wait on Lambda', () => {
  let database: TestDatabase;
  let references: { userId: number; productId: number };
  // The names a test of its own needs (random key prefix and queue), validated.
  const { REDIS_KEY_PREFIX, QUEUE_NAME } = testConfig();

  beforeAll(async () => {
    database = await createTestDatabase();
    // The environment the container reads on its first invocation: BullMQ, and no worker.
    const environment = { LOG_LEVEL: 'silent', DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL };
    for (const [name, value] of Object.entries({ ...environment, REDIS_KEY_PREFIX, QUEUE_NAME })) {
      vi.stubEnv(name, value);
    }
    vi.stubEnv('QUEUE_DRIVER', 'bullmq');
    const { userId, productId } = await seedUserAndProduct(database.db);
    references = { userId, productId };
  });

  afterAll(async () => {
    await closeContainer();
    vi.unstubAllEnvs();
    await database?.drop();
    await deleteKeys(REDIS_KEY_PREFIX);
  });

  /** A purchase with `Prefer: wait=<seconds>` that API Gateway received `agoMs` ago. */
  async function purchase(seconds: number, options: { agoMs?: number; remainingMs?: number } = {}) {
    const event = httpApiEvent('POST', '/payment/purchase', {
      body: references,
      apiKey: database.account.apiKey,
      headers: { prefer: `wait=${seconds}`, 'idempotency-key': crypto.randomUUID() },
    });
    event.requestContext.timeEpoch = Date.now() - (options.agoMs ?? 0);
    const response = await handler(event, lambdaContext('payonce-test-api', options.remainingMs));
    return { status: response.statusCode, sinceReceivedMs: Date.now() - event.requestContext.timeEpoch };
  }

  it(
    "answers within API Gateway's timeout, counting from when API Gateway received the request",
    { timeout: 20_000 },
    async () => {
      // A cold start or a slow queue already took 20 s of the 30: 5 s of waiting are left.
      const { status, sinceReceivedMs } = await purchase(30, { agoMs: 20_000 });
      expect(status).toBe(202);
      expect(sinceReceivedMs).toBeGreaterThanOrEqual(LAMBDA_MAX_WAIT_SECONDS * 1000 - 100);
      expect(sinceReceivedMs).toBeLessThan(API_GATEWAY_TIMEOUT_MS - 2_000);
    },
  );

  it("answers before the invocation's own timeout", { timeout: 20_000 }, async () => {
    // A function timeout shorter than the wait (api_timeout_seconds may be set under 30).
    const { status, sinceReceivedMs } = await purchase(20, { remainingMs: 3_000 });
    expect(status).toBe(202);
    expect(sinceReceivedMs).toBeGreaterThanOrEqual(1_500);
    expect(sinceReceivedMs).toBeLessThan(3_000);
  });
});
