import { Cluster, Redis, type ClusterOptions, type DNSLookupFunction, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

/**
 * A connection to a single Redis or to a Redis Cluster (REDIS_CLUSTER=true): ioredis' `Redis`
 * and `Cluster` take the same commands and emit the same connection events.
 */
export type RedisClient = Redis | Cluster;

/** What a connection needs of the config (with STORE_BACKEND=redis, where REDIS_URL is set). */
type RedisConfig = { REDIS_URL: string } & Pick<Config, 'REDIS_COMMAND_TIMEOUT_MS'> &
  Partial<Pick<Config, 'REDIS_CLUSTER' | 'REDIS_CLUSTER_NODES'>>;

/**
 * A connection for request paths: commands fail at once while Redis is unreachable (no offline
 * queue) and time out quickly while it hangs, so the API answers 503 within a second instead of
 * holding requests. It keeps reconnecting in the background.
 */
export function createFailFastRedis(config: RedisConfig, logger: Logger, role: string): RedisClient {
  const options = {
    connectionName: `payonce-${role}`,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.max(config.REDIS_COMMAND_TIMEOUT_MS, 1_000),
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
  } satisfies RedisOptions;
  const client = config.REDIS_CLUSTER
    ? connectEveryNode(
        connectCluster(config, options, {
          enableOfflineQueue: false,
          // Ready as soon as the slots are known. With the ready check, the client stays in
          // 'connect' until CLUSTER INFO answers, and refuses commands meanwhile (no offline
          // queue); BullMQ counts 'connect' as ready on a cluster and would fail its start-up
          // there. A cluster that is down still answers CLUSTERDOWN: a 503 all the same.
          enableReadyCheck: false,
          // A command whose node is gone, or whose slots are not served, fails at once instead of
          // being retried (ioredis retries 16 times, 100 ms apart, by default): a quick 503.
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          slotsRefreshTimeout: options.connectTimeout,
        }),
      )
    : new Redis(config.REDIS_URL, { ...options, enableOfflineQueue: false, retryStrategy: reconnectBackoff });
  return attachLogging(client, logger, role);
}

/**
 * A connection for BullMQ workers and other background loops: commands wait for a reconnect
 * rather than fail (`maxRetriesPerRequest: null`, as BullMQ's production guide requires).
 */
export function createPersistentRedis(config: RedisConfig, logger: Logger, role: string): RedisClient {
  const options = {
    connectionName: `payonce-${role}`,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
  } satisfies RedisOptions;
  const client = config.REDIS_CLUSTER
    ? connectCluster(config, options, {
        // A command whose master is unreachable (down, failing over) or not yet writable again
        // (CLUSTERDOWN: a master back from a restart refuses writes for its first 2 s) is
        // retried every 500 ms for at least 30 s (an attempt may count two redirections), not
        // 16 times 100 ms apart as by default. While no node answers at all, commands wait in
        // the offline queue, as on a single Redis, however long it takes.
        retryDelayOnFailover: 500,
        retryDelayOnClusterDown: 500,
        maxRedirections: 120,
      })
    : new Redis(config.REDIS_URL, { ...options, retryStrategy: reconnectBackoff });
  return attachLogging(client, logger, role);
}

/**
 * A Cluster client seeded with REDIS_URL's node and REDIS_CLUSTER_NODES. REDIS_URL's credentials
 * and TLS apply to every node, including those the client discovers. While no seed node answers,
 * it retries from the seeds forever (`clusterRetryStrategy`).
 */
function connectCluster(
  config: RedisConfig,
  nodeOptions: NonNullable<ClusterOptions['redisOptions']>,
  clusterOptions: ClusterOptions,
): Cluster {
  const url = new URL(config.REDIS_URL);
  const tls = url.protocol === 'rediss:';
  const seeds = [
    { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379) },
    ...(config.REDIS_CLUSTER_NODES ?? []).map(({ host, port }) => ({ host, port })),
  ];
  return new Cluster(seeds, {
    ...clusterOptions,
    clusterRetryStrategy: reconnectBackoff,
    // With TLS, connect by name so the certificate matches (ioredis' advice for ElastiCache):
    // resolving the seed to an IP first would make the TLS check fail.
    ...(tls ? { dnsLookup: keepHostname } : {}),
    redisOptions: {
      ...nodeOptions,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(tls ? { tls: {} } : {}),
    },
  });
}

/**
 * Subscribes `redis` to `channel` once the connection is ready, waiting as long as that takes;
 * rejects only if the connection is closed first. Never call `subscribe` on a connection that is
 * not ready yet: ioredis sends SUBSCRIBE at once while its ready check is still pending (Redis
 * allows the command while loading), the connection enters subscriber mode, the ready check's
 * INFO is then refused ("Connection in subscriber mode"), and ioredis reconnects. Since the
 * connection had never been ready, it does not resubscribe: it comes back subscribed to nothing,
 * silently. Subscribed from a ready connection, ioredis restores the subscription after every
 * reconnect (`autoResubscribe`).
 */
export async function subscribeWhenReady(redis: RedisClient, channel: string): Promise<void> {
  const closed = () => new Error(`the Redis connection closed before it could subscribe to ${channel}`);
  while (redis.status !== 'ready') {
    if (redis.status === 'end') throw closed();
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        redis.off('ready', onReady);
        redis.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => settle();
      const onEnd = () => settle(closed());
      redis.on('ready', onReady);
      redis.on('end', onEnd);
    });
  }
  // In the same turn as the status check: nothing can interleave.
  await redis.subscribe(channel);
}

/**
 * Connects to each node of `cluster` as soon as it is known. ioredis connects to a node on its
 * first command, and without an offline queue refuses the commands that arrive while that
 * connection is being made: the first requests after start-up would each get a 503. (A turn
 * later, so that a command redirected to a node just discovered, which starts the connection
 * itself and waits for it, goes first.)
 */
function connectEveryNode(cluster: Cluster): Cluster {
  cluster.on('+node', (node: Redis) => {
    setImmediate(() => {
      if (node.status === 'wait') node.connect().catch(() => {});
    });
  });
  return cluster;
}

const keepHostname: DNSLookupFunction = (hostname, done) => done(null, hostname);

/** Reconnect after 50 ms, doubling up to 2 s; never give up. */
function reconnectBackoff(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2_000);
}

function attachLogging<T extends RedisClient>(redis: T, logger: Logger, role: string): T {
  let reported = false;
  // Without an 'error' listener ioredis prints unhandled errors; log one per outage instead.
  redis.on('error', (error: Error) => {
    if (!reported) logger.warn({ err: error, redis: role }, 'redis connection error');
    reported = true;
  });
  redis.on('ready', () => {
    if (reported) logger.info({ redis: role }, 'redis connection restored');
    reported = false;
  });
  return redis;
}

/** Closes a connection politely, or drops it if Redis does not answer. Idempotent. */
export async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  try {
    if (redis.status === 'ready') {
      await redis.quit();
      return;
    }
  } catch {
    // fall through to disconnect
  }
  redis.disconnect();
}

/**
 * Resolves once `redis` is connected, or after `timeoutMs` (whichever comes first), so a new
 * container's first invocation does not meet a fail-fast connection that is still connecting.
 * Never rejects: if Redis stays away, requests get the usual 503.
 */
export async function untilRedisReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    redis.once('ready', done);
  });
}
