import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/shared/config.js';

describe('loadConfig', () => {
  it('needs no environment for the local quick start', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      WORKER_HTTP_PORT: 3001,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/payonce',
      // No Redis needed: without REDIS_URL everything lives in Postgres.
      STORE_BACKEND: 'postgres',
      EMBEDDED_POSTGRES_PORT: 54329,
      PAYONCE_HOME: '.payonce',
      QUEUE_NAME: 'purchases',
      IDEMPOTENCY_TTL_SECONDS: 300,
      PAYMENT_DELAY_MS: 2000,
      PAYMENT_DECLINE_RATE: 0,
      WORKER_CONCURRENCY: 50,
      LOG_LEVEL: 'info',
      RATE_LIMIT_MAX: 1000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('picks the store backend from REDIS_URL unless STORE_BACKEND says otherwise', () => {
    expect(loadConfig({}).REDIS_URL).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379' })).toMatchObject({
      STORE_BACKEND: 'redis',
      REDIS_URL: 'redis://cache:6379',
    });
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379', STORE_BACKEND: 'postgres' }).STORE_BACKEND).toBe('postgres');
    expect(() => loadConfig({ STORE_BACKEND: 'redis' })).toThrow(/REDIS_URL: required when STORE_BACKEND=redis/);
    expect(() => loadConfig({ STORE_BACKEND: 'mongodb' })).toThrow(/STORE_BACKEND/);
  });

  it('connects to a Redis Cluster only when asked, with seed nodes as host:port or URLs', () => {
    const redis = { REDIS_URL: 'redis://node-a:7000' };
    expect(loadConfig(redis).REDIS_CLUSTER).toBe(false);
    expect(loadConfig(redis).REDIS_CLUSTER_NODES).toBeUndefined();
    expect(loadConfig({ ...redis, REDIS_CLUSTER: 'false' }).REDIS_CLUSTER).toBe(false);
    expect(
      loadConfig({
        ...redis,
        REDIS_CLUSTER: 'true',
        REDIS_CLUSTER_NODES: 'node-b:7001, redis://node-c:7002,[::1]:7003',
      }),
    ).toMatchObject({
      REDIS_CLUSTER: true,
      REDIS_CLUSTER_NODES: [
        { host: 'node-b', port: 7001, tls: false },
        { host: 'node-c', port: 7002, tls: false },
        { host: '::1', port: 7003, tls: false },
      ],
    });
    expect(
      loadConfig({
        REDIS_URL: 'rediss://:token@cfg:6379',
        REDIS_CLUSTER: 'true',
        REDIS_CLUSTER_NODES: 'rediss://n:6379',
      }).REDIS_CLUSTER_NODES,
    ).toEqual([{ host: 'n', port: 6379, tls: true }]);
  });

  it('rejects a cluster setting that cannot work, naming the variable', () => {
    const cluster = { REDIS_URL: 'redis://node-a:7000', REDIS_CLUSTER: 'true' };
    expect(() => loadConfig({ ...cluster, REDIS_CLUSTER: 'yes' })).toThrow(/REDIS_CLUSTER:/);
    expect(() => loadConfig({ ...cluster, REDIS_CLUSTER_NODES: 'node-b' })).toThrow(/REDIS_CLUSTER_NODES.*node-b/);
    expect(() => loadConfig({ ...cluster, REDIS_CLUSTER_NODES: 'node-b:7001,' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ ...cluster, REDIS_CLUSTER_NODES: 'redis://user:pw@node-b:7001' })).toThrow(
      /REDIS_CLUSTER_NODES.*credentials come from REDIS_URL/,
    );
    expect(() => loadConfig({ ...cluster, REDIS_CLUSTER_NODES: 'rediss://node-b:7001' })).toThrow(
      /REDIS_CLUSTER_NODES: every node must use redis:\/\/ or host:port/,
    );
    expect(() => loadConfig({ REDIS_URL: 'redis://node-a:7000', REDIS_CLUSTER_NODES: 'node-b:7001' })).toThrow(
      /REDIS_CLUSTER_NODES: only with REDIS_CLUSTER=true/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER: 'true' })).toThrow(/REDIS_CLUSTER: true needs STORE_BACKEND=redis/);
  });

  it('coerces numbers and treats empty strings as unset', () => {
    const config = loadConfig({ PORT: '8080', PAYMENT_DECLINE_RATE: '0.25', WORKER_CONCURRENCY: '' });
    expect(config.PORT).toBe(8080);
    expect(config.PAYMENT_DECLINE_RATE).toBe(0.25);
    expect(config.WORKER_CONCURRENCY).toBe(50);
  });

  it('takes WORKER_HTTP_PORT 0 (the OS picks one) and refuses one that is no port', () => {
    expect(loadConfig({ WORKER_HTTP_PORT: '0' }).WORKER_HTTP_PORT).toBe(0);
    expect(() => loadConfig({ WORKER_HTTP_PORT: '65536' })).toThrow(/WORKER_HTTP_PORT/);
    expect(() => loadConfig({ WORKER_HTTP_PORT: '-1' })).toThrow(/WORKER_HTTP_PORT/);
  });

  it('reads "false" as false', () => {
    expect(loadConfig({ LOG_PRETTY: 'false' }).LOG_PRETTY).toBe(false);
    expect(loadConfig({ LOG_PRETTY: 'true' }).LOG_PRETTY).toBe(true);
  });

  it('takes the application role of the migration Lambda as a name and a password together', () => {
    const role = { APP_DATABASE_ROLE: 'payonce_app', APP_DATABASE_PASSWORD: 'x'.repeat(40) };
    expect(loadConfig(role)).toMatchObject(role);
    expect(() => loadConfig({ APP_DATABASE_ROLE: 'payonce_app' })).toThrow(/APP_DATABASE_PASSWORD: set .* together/);
    expect(() => loadConfig({ APP_DATABASE_PASSWORD: 'x'.repeat(40) })).toThrow(/APP_DATABASE_ROLE: set .* together/);
    expect(() => loadConfig({ ...role, APP_DATABASE_ROLE: 'Payonce App' })).toThrow(/APP_DATABASE_ROLE: lowercase/);
    expect(() => loadConfig({ ...role, APP_DATABASE_PASSWORD: 'short' })).toThrow(/APP_DATABASE_PASSWORD: at least 16/);
  });

  it('reports every invalid variable in one message', () => {
    const attempt = () =>
      loadConfig({
        PORT: 'eighty',
        PAYMENT_DECLINE_RATE: '1.5',
        REDIS_URL: 'http://example',
        QUEUE_NAME: 'has:colon',
        LOG_PRETTY: 'yes',
      });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      for (const name of ['PORT', 'PAYMENT_DECLINE_RATE', 'REDIS_URL', 'QUEUE_NAME', 'LOG_PRETTY']) {
        expect(message).toContain(name);
      }
    }
  });
});
