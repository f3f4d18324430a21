import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { eventually } from './services.js';
import { freePort, startRedisServer, type RunningRedisServer } from './processes.js';

/** A Redis Cluster of the test's own, started by `startRedisCluster`. */
export interface RunningRedisCluster {
  /** REDIS_URL for payonce: the first node; the client finds the others through it. */
  url: string;
  /** Its masters, one redis-server each (`servers[n].stop()` takes one down). */
  servers: RunningRedisServer[];
  /** Starts master `n` again, stopped before, on its port with its cluster configuration: it rejoins with its slots. */
  restart(n: number): Promise<void>;
  /** The environment that points payonce at this cluster (REDIS_URL, REDIS_CLUSTER, REDIS_CLUSTER_NODES). */
  env: Record<string, string>;
  /** A Cluster client of the caller's own (who disconnects it). */
  connect(redisOptions?: RedisOptions): Cluster;
  /** Stops every server it started, by PID, and removes their folder. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a Redis Cluster of `masters` masters and no replicas on free loopback ports: one
 * `redis-server --cluster-enabled yes` each (nothing persisted, config files in a temporary
 * folder), joined by `redis-cli --cluster create`, and resolves once every node reports
 * `cluster_state:ok`.
 */
export async function startRedisCluster(masters = 3): Promise<RunningRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'payonce-redis-cluster-'));
  const servers: RunningRedisServer[] = [];
  /** Each master's redis-server arguments, to start it again as the same node. */
  const serverOptions: Array<Parameters<typeof startRedisServer>[0]> = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await Promise.all(servers.map((server) => server.stop()));
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    for (let node = 0; node < masters; node++) {
      const port = await freePort();
      // The cluster bus needs a port too; its default, port + 10000, may be taken or out of range.
      let busPort = await freePort();
      while (busPort === port) busPort = await freePort();
      const config = join(dir, `nodes-${port}.conf`);
      const options = {
        port,
        dir,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', config, '--cluster-port', String(busPort)],
      };
      serverOptions.push(options);
      servers.push(await startRedisServer(options));
    }
    const addresses = servers.map(({ port }) => `127.0.0.1:${port}`);
    await promisify(execFile)(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000 },
    );
    await Promise.all(servers.map(({ port }) => clusterStateOk(port)));
  } catch (error) {
    await stop();
    throw error;
  }

  const [first, ...others] = servers;
  return {
    url: first!.url,
    servers,
    env: {
      REDIS_URL: first!.url,
      REDIS_CLUSTER: 'true',
      REDIS_CLUSTER_NODES: others.map(({ port }) => `127.0.0.1:${port}`).join(','),
    },
    async restart(n) {
      servers[n] = await startRedisServer(serverOptions[n]);
    },
    connect(redisOptions = {}) {
      const cluster = new Cluster(
        servers.map(({ port }) => ({ host: '127.0.0.1', port })),
        { redisOptions },
      );
      cluster.on('error', () => {});
      return cluster;
    },
    stop,
  };
}

/** Waits until the node on `port` sees every slot served (`cluster_state:ok`). */
async function clusterStateOk(port: number): Promise<void> {
  const node = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await node.connect();
    await eventually(async () => ((await node.cluster('INFO')).includes('cluster_state:ok') ? true : undefined), {
      timeoutMs: 20_000,
      what: `the cluster node on port ${port} to report cluster_state:ok`,
    });
  } finally {
    node.disconnect();
  }
}

/**
 * Every key matching `pattern`, SCANned on a single Redis or on every master of a cluster (a
 * cluster's SCAN covers only the node it runs on).
 */
export async function scanKeys(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  if (redis instanceof Cluster) {
    // Until it is ready, a Cluster client knows no nodes, and there would be nothing to scan.
    await eventually(() => (redis.status === 'ready' ? true : undefined), { what: 'the cluster client to be ready' });
  }
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const found: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
  }
  return found;
}
