import { Cluster, Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { createFailFastRedis, createPersistentRedis, type RedisClient } from '../../src/shared/redis/connection.js';

const logger = pino({ level: 'silent' });

/** Nothing listens on port 1: the clients try, fail and retry in the background until closed. */
describe('the Redis connections as REDIS_CLUSTER chooses them', () => {
  const opened: RedisClient[] = [];
  afterEach(() => {
    for (const client of opened.splice(0)) client.disconnect();
  });
  const open = (make: typeof createFailFastRedis, env: Record<string, string>) => {
    const config = loadConfig({ STORE_BACKEND: 'redis', ...env });
    if (config.STORE_BACKEND !== 'redis') throw new Error('unreachable');
    const client = make(config, logger, 'test');
    opened.push(client);
    return client;
  };

  it('are single-Redis clients by default', () => {
    for (const make of [createFailFastRedis, createPersistentRedis]) {
      expect(open(make, { REDIS_URL: 'redis://127.0.0.1:1' })).toBeInstanceOf(Redis);
    }
  });

  it("are Cluster clients seeded with REDIS_URL's node and REDIS_CLUSTER_NODES, with its credentials and TLS for every node", async () => {
    const env = {
      REDIS_URL: 'rediss://app:p%40ss@127.0.0.1:1',
      REDIS_CLUSTER: 'true',
      REDIS_CLUSTER_NODES: 'rediss://127.0.0.2:1, rediss://127.0.0.3:1',
    };
    for (const make of [createFailFastRedis, createPersistentRedis]) {
      const client = open(make, env);
      expect(client).toBeInstanceOf(Cluster);
      const cluster = client as Cluster;
      // ioredis keeps the seeds in a private field; reading it is the only way to see them.
      expect((cluster as unknown as { startupNodes: unknown }).startupNodes).toEqual([
        { host: '127.0.0.1', port: 1 },
        { host: '127.0.0.2', port: 1 },
        { host: '127.0.0.3', port: 1 },
      ]);
      expect(cluster.options.redisOptions).toMatchObject({ username: 'app', password: 'p@ss', tls: {} });
      // Seeds are connected to by name, so that the TLS certificate can match.
      const resolved = new Promise((resolve) =>
        cluster.options.dnsLookup?.('cache.internal', (_, address) => resolve(address)),
      );
      await expect(resolved).resolves.toBe('cache.internal');
    }
  });

  it('keep the fail-fast and wait-for-reconnect semantics on a cluster', () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER: 'true', REDIS_COMMAND_TIMEOUT_MS: '300' };
    const failFast = open(createFailFastRedis, env) as Cluster;
    expect(failFast.options).toMatchObject({
      enableOfflineQueue: false,
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
    });
    expect(failFast.options.redisOptions).toMatchObject({ maxRetriesPerRequest: 0, commandTimeout: 300 });
    expect(failFast.options.redisOptions).not.toHaveProperty('tls');
    const persistent = open(createPersistentRedis, env) as Cluster;
    expect(persistent.options).toMatchObject({ enableOfflineQueue: true });
    // BullMQ refuses a blocking connection without it.
    expect(persistent.options.redisOptions).toMatchObject({ maxRetriesPerRequest: null });
    for (const cluster of [failFast, persistent]) {
      expect(cluster.options.clusterRetryStrategy?.(50)).toBe(2_000);
    }
  });
});
