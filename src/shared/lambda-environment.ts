import type { Redis } from 'ioredis';
import { loadAppSecrets } from './app-secrets.js';
import { loadConfig, type Config } from './config.js';

/**
 * The configuration of a Lambda container: the APP_SECRET_ARN secret merged over the
 * environment, then parsed like any process's. Logs are always JSON lines there (CloudWatch
 * reads them, and the bundles do not ship pino-pretty).
 * @throws ConfigError or the secret's load error; Lambda reports it as an init failure.
 */
export async function loadLambdaConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const merged = await loadAppSecrets(env);
  return loadConfig({ ...merged, LOG_PRETTY: 'false' });
}

/**
 * Resolves once `redis` is connected, or after `timeoutMs` (whichever comes first), so a new
 * container's first invocation does not meet a fail-fast connection that is still connecting.
 * Never rejects: if Redis stays away, requests get the usual 503.
 */
export async function untilRedisReady(redis: Redis, timeoutMs: number): Promise<void> {
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

/** A container's memoised set-up; see `oncePerContainer`. */
export interface ContainerSetUp<T> {
  (): Promise<T>;
  /**
   * Closes what the set-up made, if it ever succeeded (Lambda itself never needs to: it freezes
   * and discards containers). For tests and local runs that load a handler in a longer-lived
   * process; the next invocation sets the container up again.
   */
  close(): Promise<void>;
}

/**
 * Memoises a container's asynchronous set-up: the first invocation starts it, later ones reuse
 * it. A failed set-up is forgotten, so the next invocation tries again instead of failing forever.
 */
export function oncePerContainer<T extends { close(): Promise<void> }>(setUp: () => Promise<T>): ContainerSetUp<T> {
  let ready: Promise<T> | undefined;
  const get = () => {
    ready ??= setUp().catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    return ready;
  };
  return Object.assign(get, {
    async close() {
      const taken = ready;
      ready = undefined;
      if (!taken) return;
      const made = await taken.catch(() => undefined);
      await made?.close();
    },
  });
}
