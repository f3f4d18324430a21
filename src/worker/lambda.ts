import { ChangeMessageVisibilityBatchCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createDb } from '../shared/db.js';
import { loadLambdaConfig } from '../shared/config.js';
import { oncePerContainer } from '../shared/lambda-container.js';
import { createLogger } from '../shared/logger.js';
import { createSqsClient } from '../shared/queue/sqs-client.js';
import { closeRedis, createPersistentRedis } from '../shared/redis/connection.js';
import { purchaseProcessorFromConfig } from './purchase-processor-from-config.js';
import { createSqsBatchHandler } from './sqs-batch-handler.js';
import { sqsMessageSettlerFromConfig } from './sqs-purchase-message.js';

/**
 * The worker on AWS Lambda: the SQS event source mapping hands it batches of the purchases
 * queue, with ReportBatchItemFailures. Clients are created once per container, on its first
 * invocation. The Redis connection waits for reconnects (as the worker process's does); the
 * batch handler's deadline, not a failing command, bounds a Redis outage.
 */
const container = oncePerContainer(async () => {
  const config = await loadLambdaConfig();
  const logger = createLogger(config, 'payonce-worker');
  const db = createDb(config);
  const redis = createPersistentRedis(config, logger, 'worker');
  const sqs = createSqsClient({ requestTimeoutMs: 5_000 });
  const processor = purchaseProcessorFromConfig(config, { db, redis, logger });
  const handleBatch = createSqsBatchHandler({
    settle: sqsMessageSettlerFromConfig(config, processor, logger),
    logger,
    releaseUnattempted: config.SQS_QUEUE_URL
      ? (records) => releaseRecords(sqs, config.SQS_QUEUE_URL!, records)
      : undefined,
  });
  logger.info('worker container ready');

  async function close(): Promise<void> {
    sqs.destroy();
    await closeRedis(redis);
    await db.destroy();
  }
  return { handleBatch, close };
});

/** Makes records visible again at once (ChangeMessageVisibility to 0), ten per request. */
async function releaseRecords(
  sqs: ReturnType<typeof createSqsClient>,
  queueUrl: string,
  records: SQSRecord[],
): Promise<void> {
  for (let start = 0; start < records.length; start += 10) {
    const chunk = records.slice(start, start + 10);
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((record, index) => ({
          Id: String(index),
          ReceiptHandle: record.receiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
}

/** Lambda entry (`index.handler` in worker.zip). */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { handleBatch } = await container();
  return handleBatch(event, () => context.getRemainingTimeInMillis());
}

/** Closes this container's clients; see `ContainerSetUp.close`. */
export const closeContainer = (): Promise<void> => container.close();
