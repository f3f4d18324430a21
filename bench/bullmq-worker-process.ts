import { Worker, type Processor } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfigOrExit, type Config } from '../src/shared/config.js';
import { bullmqPrefix } from '../src/shared/redis/keys.js';

/** The configuration of a bench baseline process: they all run on Redis (the bench sets REDIS_URL). */
export function loadRedisConfigOrExit(): Extract<Config, { STORE_BACKEND: 'redis' }> {
  const config = loadConfigOrExit();
  if (config.STORE_BACKEND !== 'redis') {
    console.error('the bench baselines run on Redis: set REDIS_URL');
    process.exit(1);
  }
  return config;
}

/**
 * Runs a BullMQ worker on payonce's queue and prefix with `processor`, at WORKER_CONCURRENCY, and
 * prints "worker started" once it is ready (the bench waits for that line). On SIGTERM it
 * finishes its jobs, runs `close` and exits. The bench's worker baselines differ only in
 * `processor`.
 */
export async function serveBullmqWorker(
  config: { REDIS_URL: string } & Pick<Config, 'QUEUE_NAME' | 'REDIS_KEY_PREFIX' | 'WORKER_CONCURRENCY'>,
  processor: Processor,
  close: () => Promise<unknown> = async () => {},
): Promise<void> {
  const connection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const worker = new Worker(config.QUEUE_NAME, processor, {
    connection,
    prefix: bullmqPrefix(config.REDIS_KEY_PREFIX),
    concurrency: config.WORKER_CONCURRENCY,
  });
  worker.on('error', () => {});
  await worker.waitUntilReady();
  console.log('worker started');
  process.on(
    'SIGTERM',
    () =>
      void worker
        .close()
        .then(() => connection.quit())
        .then(close)
        .then(() => process.exit(0)),
  );
}
