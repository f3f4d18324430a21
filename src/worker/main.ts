import closeWithGrace from 'close-with-grace';
import { loadProcessConfigOrExit } from '../shared/config.js';
import { closeWhenParentExits } from '../shared/lifecycle.js';
import { composeWorker } from './composition-root.js';

/** The worker process: consumes purchase jobs until SIGTERM/SIGINT, then drains and exits 0. */
const config = await loadProcessConfigOrExit();
const worker = composeWorker(config);
const { logger } = worker;
await worker.startTransport();
worker.startReconciler();
worker.startWebhookDispatcher();

const { close } = closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS + 5_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'fatal error; shutting down');
  else logger.info({ signal }, 'shutting down: finishing in-flight jobs');
  await worker.close();
  logger.info('shut down cleanly');
});
closeWhenParentExits(close, logger);

logger.info(
  {
    backend: config.STORE_BACKEND,
    driver: config.QUEUE_DRIVER,
    queue: config.QUEUE_DRIVER === 'sqs' ? config.SQS_QUEUE_URL : config.QUEUE_NAME,
    concurrency: config.WORKER_CONCURRENCY,
  },
  'worker started',
);
