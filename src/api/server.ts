import { setTimeout as sleep } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import { loadProcessConfigOrExit, type Config } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createLogger } from '../shared/logger.js';
import { closeWhenParentExits } from '../shared/parent-process.js';
import { createPurchaseProducer } from '../shared/queue/create-purchase-producer.js';
import { closeRedis, createFailFastRedis, createPersistentRedis } from '../shared/redis/connection.js';
import { createApiServices } from './api-services.js';
import { buildApp } from './app.js';

/** The API process: reads the environment, creates every client, serves HTTP, closes in order. */
async function main(config: Config): Promise<void> {
  const logger = createLogger(config, 'payonce-api');
  const db = createDb(config);
  const redis = createFailFastRedis(config, logger, 'api');
  const subscriber = createPersistentRedis(config, logger, 'api-events');
  const producer = await createPurchaseProducer(config, { redis });
  const services = createApiServices(config, { db, redis, subscriber, producer, logger });

  let shuttingDown = false;
  const app = await buildApp({
    ...services,
    isShuttingDown: () => shuttingDown,
    fastify: { loggerInstance: logger, bodyLimit: config.BODY_LIMIT_BYTES },
  });

  const { close } = closeWithGrace(
    { delay: config.SHUTDOWN_READINESS_DELAY_MS + config.SHUTDOWN_TIMEOUT_MS, logger },
    async ({ signal, err }) => {
      if (err) logger.error({ err }, 'fatal error; shutting down');
      else logger.info({ signal }, 'shutting down');
      // Readiness turns 503 first so load balancers stop sending before the listener closes.
      shuttingDown = true;
      if (config.SHUTDOWN_READINESS_DELAY_MS > 0) await sleep(config.SHUTDOWN_READINESS_DELAY_MS);
      services.waiter.close();
      await app.close(); // stops accepting, then drains in-flight requests
      await producer.close();
      await closeRedis(subscriber);
      await closeRedis(redis);
      await db.destroy();
      logger.info('shut down cleanly');
    },
  );
  closeWhenParentExits(close, logger);

  // Subscribing waits for Redis; the API serves (and answers 503 where Redis is needed) meanwhile.
  void services.waiter.start().catch((error: unknown) => logger.warn({ err: error }, 'event subscription failed'));
  await app.listen({ host: config.HOST, port: config.PORT });
}

await main(await loadProcessConfigOrExit());
