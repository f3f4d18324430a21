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
  return {
    handleBatch,
    reconcile: () => worker.reconcile(),
    dispatchWebhooks: (remainingMs: () => number) => worker.dispatchWebhooks(remainingMs),
    close: () => worker.close(),
  };
});

/** The EventBridge event of infra/webhooks.tf's schedule: it carries this constant input. */
export interface DispatchWebhooksEvent {
  payonce: 'dispatch-webhooks';
}

/**
 * Lambda entry (`index.handler` in worker.zip): a batch from the SQS event source mapping, or one
 * of the EventBridge schedules that stand in for the worker process's timers, since a Lambda
 * worker has no long-running process: the reconciler (infra/reconcile.tf) and the webhook
 * dispatcher (infra/webhooks.tf, whose event carries `{"payonce": "dispatch-webhooks"}`).
 */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse>;
export async function handler(event: DispatchWebhooksEvent, context: Context): Promise<{ attempted: number }>;
export async function handler(event: ScheduledEvent, context: Context): Promise<ReconcileReport>;
export async function handler(
  event: SQSEvent | ScheduledEvent | DispatchWebhooksEvent,
  context: Context,
): Promise<SQSBatchResponse | ReconcileReport | { attempted: number }> {
  const { handleBatch, reconcile, dispatchWebhooks } = await container();
  const remainingMs = () => context.getRemainingTimeInMillis();
  if ('Records' in event) return handleBatch(event, remainingMs);
  if ('payonce' in event && event.payonce === 'dispatch-webhooks') return dispatchWebhooks(remainingMs);
  return reconcile();
}

/** Closes this container's clients; see `ContainerSetUp.close`. */
export const closeContainer = (): Promise<void> => container.close();
