import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { loadLambdaConfig } from '../shared/config.js';
import { oncePerContainer } from '../shared/lambda-container.js';
import { composeWorker } from './composition-root.js';

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
  return { handleBatch, close: worker.close };
});

/** Lambda entry (`index.handler` in worker.zip). */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { handleBatch } = await container();
  return handleBatch(event, () => context.getRemainingTimeInMillis());
}

/** Closes this container's clients; see `ContainerSetUp.close`. */
export const closeContainer = (): Promise<void> => container.close();
