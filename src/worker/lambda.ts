import type { Context, ScheduledEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { loadLambdaConfig } from '../shared/config.js';
import { oncePerContainer } from '../shared/lambda-container.js';
import { composeWorker } from './composition-root.js';
import type { ReconcileReport } from './reconciler.js';

/**
 * The worker on AWS Lambda: the SQS event source mapping hands it batches of the purchases
 * queue, with ReportBatchItemFailures. Clients are created once per container, on its first
 * invocation. The Redis connection waits for reconnects (as the worker process's does); the
 * batch handler's deadline, not a failing command, bounds a Redis outage.
 */
const container = oncePerContainer(async () => {
  const config = await loadLambdaConfig();
  const worker = composeWorker(config);
  const handleBatch = await worker.createSqsBatchHandler();
  worker.logger.info('worker container ready');
  return { handleBatch, reconcile: () => worker.reconcile(), close: () => worker.close() };
});

/**
 * Lambda entry (`index.handler` in worker.zip): a batch from the SQS event source mapping, or
 * the EventBridge schedule (infra/reconcile.tf) that runs the reconciler, since a Lambda worker
 * has no long-running process to run it on an interval.
 */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse>;
export async function handler(event: ScheduledEvent, context: Context): Promise<ReconcileReport>;
export async function handler(
  event: SQSEvent | ScheduledEvent,
  context: Context,
): Promise<SQSBatchResponse | ReconcileReport> {
  const { handleBatch, reconcile } = await container();
  if ('Records' in event) return handleBatch(event, () => context.getRemainingTimeInMillis());
  return reconcile();
}

/** Closes this container's clients; see `ContainerSetUp.close`. */
export const closeContainer = (): Promise<void> => container.close();
