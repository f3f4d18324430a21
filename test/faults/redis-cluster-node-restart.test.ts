import { setTimeout as sleep } from 'node:timers/promises';
import calculateSlot from 'cluster-key-slot';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeRedis,
  createFailFastRedis,
  createPersistentRedis,
  untilRedisReady,
  type RedisClient,
} from '../../src/shared/redis/connection.js';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis-cluster.js';
import { eventually } from '../support/services.js';

/**
 * REDIS_CLUSTER=true keeps the two connections' promises of a single Redis: the API's fails at
 * once (a quick 503), the worker's waits. Here one master of a 3-master cluster without
 * replicas is killed and started again; its slots have no other home meanwhile.
 */
describe('a Redis Cluster master killed and restarted', () => {
  const logger = pino({ level: 'silent' });
  let cluster: RunningRedisCluster;
  let failFast: RedisClient;
  let persistent: RedisClient;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const config = { REDIS_URL: cluster.url, REDIS_COMMAND_TIMEOUT_MS: 500, REDIS_CLUSTER: true };
    failFast = createFailFastRedis(config, logger, 'test-api');
    persistent = createPersistentRedis(config, logger, 'test-worker');
    await Promise.all([untilRedisReady(failFast, 10_000), untilRedisReady(persistent, 10_000)]);
  });

  afterAll(async () => {
    await Promise.all([failFast, persistent].filter(Boolean).map(closeRedis));
    await cluster?.stop();
  });

  /** A key whose slot the master on `port` serves. */
  async function keyServedBy(port: number): Promise<string> {
    const ranges = await persistent.cluster('SLOTS');
    const range = ranges.find(([, , master]) => master?.[1] === port);
    if (!range) throw new Error(`no master on port ${port} serves slots`);
    const [from, to] = range;
    for (let n = 0; ; n++) {
      const slot = calculateSlot(`key-${n}`);
      if (slot >= from && slot <= to) return `key-${n}`;
    }
  }

  it("fails the API's commands for its slots at once, holds the worker's until it is back, and both recover", async () => {
    const victim = cluster.servers[2]!;
    const [lost, kept] = [await keyServedBy(victim.port), await keyServedBy(cluster.servers[0]!.port)];
    await persistent.set(lost, 'before');
    await failFast.get(lost);

    await victim.stop('SIGKILL');
    const started = performance.now();
    await expect(failFast.get(lost)).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(1_000);
    // The other masters' slots still answer.
    expect(await failFast.set(kept, 'fine')).toBe('OK');

    let held: string | Error | undefined;
    const write = persistent.set(lost, 'during').then(
      (reply) => (held = reply),
      (error: Error) => (held = error),
    );
    await sleep(2_000);
    expect(held).toBeUndefined();

    // Back on its port with its configuration: it rejoins with its slots, and refuses writes for
    // its first 2 s, which the worker's connection waits out too.
    await cluster.restart(2);
    await write;
    expect(held).toBe('OK');
    expect(await eventually(() => failFast.get(lost).catch(() => undefined), { what: 'the API to read again' })).toBe(
      'during',
    );
  });
});
