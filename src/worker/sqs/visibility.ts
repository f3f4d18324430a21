import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Logger } from '../../shared/logger.js';

/** SQS changes at most this many messages' visibility per batch request. */
const MAX_BATCH_ENTRIES = 10;

/** Hides a received message for `seconds` from now (0 makes it visible again at once). */
export async function changeVisibility(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandle: string | undefined,
  seconds: number,
): Promise<void> {
  await sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: seconds,
    }),
  );
}

/** Makes received messages visible again at once, ten per request. */
export async function releaseMessages(sqs: SQSClient, queueUrl: string, receiptHandles: string[]): Promise<void> {
  for (let start = 0; start < receiptHandles.length; start += MAX_BATCH_ENTRIES) {
    const chunk = receiptHandles.slice(start, start + MAX_BATCH_ENTRIES);
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((receiptHandle, index) => ({
          Id: String(index),
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
}

/**
 * Keeps a message hidden while its purchase runs: extends its visibility to
 * `visibilityTimeoutSeconds` every third of that, so only a worker that died lets it reappear.
 * Returns the stop function, which also waits for an extension still in flight, so that a final
 * visibility change never races with a heartbeat.
 */
export function startVisibilityHeartbeat(options: {
  sqs: SQSClient;
  queueUrl: string;
  receiptHandle: string | undefined;
  messageId: string | undefined;
  visibilityTimeoutSeconds: number;
  logger: Logger;
}): () => Promise<void> {
  const { sqs, queueUrl, receiptHandle, messageId, visibilityTimeoutSeconds, logger } = options;
  let beat: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      beat = changeVisibility(sqs, queueUrl, receiptHandle, visibilityTimeoutSeconds).catch((error: unknown) => {
        logger.warn({ err: error, messageId }, 'could not extend the message visibility');
      });
    },
    Math.max(1_000, (visibilityTimeoutSeconds * 1_000) / 3),
  );
  return async () => {
    clearInterval(timer);
    await beat;
  };
}
