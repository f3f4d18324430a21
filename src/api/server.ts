import { setTimeout as sleep } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import { loadProcessConfigOrExit } from '../shared/config.js';
import { closeWhenParentExits } from '../shared/lifecycle.js';
import { composeApi } from './composition-root.js';

/** The API process: reads the environment, composes the API, serves HTTP, closes in order. */
const config = await loadProcessConfigOrExit();
const api = await composeApi(config);
const { logger } = api;

const { close } = closeWithGrace(
  { delay: config.SHUTDOWN_READINESS_DELAY_MS + config.SHUTDOWN_TIMEOUT_MS, logger },
  async ({ signal, err }) => {
    if (err) logger.error({ err }, 'fatal error; shutting down');
    else logger.info({ signal }, 'shutting down');
    // Readiness turns 503 first so load balancers stop sending before the listener closes.
    api.beginShutdown();
    if (config.SHUTDOWN_READINESS_DELAY_MS > 0) await sleep(config.SHUTDOWN_READINESS_DELAY_MS);
    await api.close();
    logger.info('shut down cleanly');
  },
);
closeWhenParentExits(close, logger);

// Subscribing waits for Redis; the API serves (and answers 503 where Redis is needed) meanwhile.
void api.subscribe().catch((error: unknown) => logger.warn({ err: error }, 'event subscription failed'));
await api.app.listen({ host: config.HOST, port: config.PORT });
