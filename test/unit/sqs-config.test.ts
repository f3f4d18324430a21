import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/shared/config.js';

describe('loadConfig: the queue driver', () => {
  it('defaults to BullMQ and needs no AWS settings', () => {
    expect(loadConfig({})).toMatchObject({
      QUEUE_DRIVER: 'bullmq',
      SQS_WAIT_TIME_SECONDS: 5,
      SQS_VISIBILITY_TIMEOUT_SECONDS: 30,
      SQS_MAX_BACKOFF_SECONDS: 900,
    });
    expect(loadConfig({}).SQS_QUEUE_URL).toBeUndefined();
  });

  it('takes SQS with a queue URL', () => {
    const url = 'https://sqs.eu-west-1.amazonaws.com/123456789012/payonce-prod-purchases.fifo';
    expect(loadConfig({ QUEUE_DRIVER: 'sqs', SQS_QUEUE_URL: url, REDIS_URL: 'redis://cache:6379' })).toMatchObject({
      QUEUE_DRIVER: 'sqs',
      SQS_QUEUE_URL: url,
      STORE_BACKEND: 'redis',
    });
  });

  it('refuses SQS on the Postgres backend: the SQS producer keeps its records in Redis', () => {
    const url = 'https://sqs.eu-west-1.amazonaws.com/123456789012/payonce-prod-purchases.fifo';
    expect(() => loadConfig({ QUEUE_DRIVER: 'sqs', SQS_QUEUE_URL: url })).toThrow(
      /QUEUE_DRIVER: sqs needs STORE_BACKEND=redis/,
    );
  });

  it('reports a missing SQS_QUEUE_URL together with every other problem', () => {
    const attempt = () => loadConfig({ QUEUE_DRIVER: 'sqs', PORT: 'eighty', SQS_WAIT_TIME_SECONDS: '30' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/SQS_QUEUE_URL: required when QUEUE_DRIVER=sqs/);
    expect(attempt).toThrow(/PORT/);
    expect(attempt).toThrow(/SQS_WAIT_TIME_SECONDS/);
  });

  it('rejects an unknown driver and a secret reference that is not an ARN', () => {
    expect(() => loadConfig({ QUEUE_DRIVER: 'kafka' })).toThrow(/QUEUE_DRIVER/);
    expect(() => loadConfig({ APP_SECRET_ARN: 'payonce/app' })).toThrow(/APP_SECRET_ARN/);
  });
});
