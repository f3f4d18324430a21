import closeWithGrace from 'close-with-grace';
import { loadProcessConfigOrExit } from '../shared/config.js';
import { closeWhenParentExits } from '../shared/lifecycle.js';
import { composeWorkerProcess } from './process-root.js';

/**
 * The worker process: serves its probes and metrics on WORKER_HTTP_PORT and consumes purchase
 * jobs until SIGTERM/SIGINT; then readiness turns 503, the jobs in flight drain, and it exits 0.
 */
const config = await loadProcessConfigOrExit();
const worker = composeWorkerProcess(config);
const { logger } = worker;
let http: string;
try {
  // Before the transport: a port that is taken stops the start before any job is taken.
  http = await worker.startHttp();
} catch (error) {
  logger.fatal({ err: error, host: config.HOST, port: config.WORKER_HTTP_PORT }, 'could not serve WORKER_HTTP_PORT');
  await worker.close();
  process.exit(1);
}
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
    http,
  },
  'worker started',
);
