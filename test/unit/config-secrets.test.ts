import { describe, expect, it } from 'vitest';
import { loadAppSecrets } from '../../src/shared/config.js';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:payonce-prod/app-AbCdEf';

describe('loadAppSecrets', () => {
  it('returns the environment untouched, reading nothing, when APP_SECRET_ARN is unset', async () => {
    const env = { DATABASE_URL: 'postgres://local/db' };
    let reads = 0;
    const merged = await loadAppSecrets(env, async () => {
      reads++;
      return '{}';
    });
    expect(merged).toBe(env);
    expect(reads).toBe(0);
  });

  it('merges the secret over the environment, without changing the environment object', async () => {
    const env = { APP_SECRET_ARN: ARN, DATABASE_URL: 'postgres://placeholder/db', LOG_LEVEL: 'warn' };
    const read: string[] = [];
    const merged = await loadAppSecrets(env, async (secretId) => {
      read.push(secretId);
      return JSON.stringify({
        DATABASE_URL: 'postgres://u:p@rds/payonce',
        REDIS_URL: 'rediss://:t@cache:6379',
        DATABASE_POOL_MAX: 2,
      });
    });
    expect(read).toEqual([ARN]);
    expect(merged).toEqual({
      APP_SECRET_ARN: ARN,
      DATABASE_URL: 'postgres://u:p@rds/payonce',
      REDIS_URL: 'rediss://:t@cache:6379',
      DATABASE_POOL_MAX: '2',
      LOG_LEVEL: 'warn',
    });
    expect(env.DATABASE_URL).toBe('postgres://placeholder/db');
  });

  it('fails with a message naming the secret but never its content', async () => {
    const secret = 'postgres://user:hunter2@rds/payonce';
    const cases: [string, () => Promise<string | undefined>][] = [
      ['not valid JSON', async () => secret],
      ['not a JSON object of environment variables', async () => JSON.stringify([secret])],
      ['not a JSON object of environment variables', async () => JSON.stringify({ 'BAD NAME': secret })],
      ['no string value', async () => undefined],
      ['AccessDeniedException', async () => Promise.reject(new Error('AccessDeniedException: not allowed'))],
    ];
    for (const [reason, read] of cases) {
      const attempt = loadAppSecrets({ APP_SECRET_ARN: ARN }, read);
      await expect(attempt).rejects.toThrow(ARN);
      await expect(attempt).rejects.toThrow(reason);
      await attempt.catch((error: Error) => expect(error.message).not.toContain('hunter2'));
    }
  });
});
