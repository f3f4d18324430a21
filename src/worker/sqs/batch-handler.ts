import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Logger } from '../../shared/logger.js';
import { TimeoutError, withTimeout } from '../../shared/timeout.js';
import { receiveCountOf, type SqsMessageOutcome, type SqsMessageSettler } from './message-settler.js';

export interface SqsBatchHandlerOptions {
  settle: SqsMessageSettler;
  logger: Logger;
  /**
   * Makes records visible again at once. Called, best effort, for the records after a failure,
   * which were never attempted: without it they would wait out the queue's visibility timeout.
   */
  releaseUnattempted?: (records: SQSRecord[]) => Promise<void>;
  /**
   * Time kept in reserve at the end of an invocation (default 5 s): a record still running
   * when only this much is left counts as failed, so the function answers before Lambda's
   * timeout would fail the whole batch.
   */
  reserveMs?: number;
}

/**
 * The Lambda side of the SQS queue: handles one event's records in order with the same
 * per-message classification as the worker process, and reports partial batch failures
 * (`ReportBatchItemFailures`). Settled records (processed, failed for good, failure recorded on
 * the last receive, malformed) are not reported, so Lambda deletes them. The first transient
 * failure ends the batch: it and every record after it are reported, so on the FIFO queue no
 * message overtakes an earlier one of its group.
 */
export function createSqsBatchHandler(options: SqsBatchHandlerOptions) {
  const { settle, logger, releaseUnattempted, reserveMs = 5_000 } = options;

  /** `remainingMs` is Lambda's `context.getRemainingTimeInMillis`. */
  return async function handleBatch(event: SQSEvent, remainingMs: () => number): Promise<SQSBatchResponse> {
    const records = event.Records;
    for (let index = 0; index < records.length; index++) {
      const record = records[index]!;
      let outcome: SqsMessageOutcome;
      try {
        outcome = await withTimeout(
          settle({
            messageId: record.messageId,
            body: record.body,
            receiveCount: receiveCountOf(record.attributes as unknown as Record<string, string>),
          }),
          Math.max(remainingMs() - reserveMs, 0),
          'purchase step',
        );
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
        outcome = { settled: false, error, retryDelaySeconds: 0 };
      }
      if (outcome.settled) continue;

      const failed = records.slice(index);
      logger.warn(
        { messageId: record.messageId, failed: failed.length, of: records.length },
        'batch stopped at a failed record; reporting it and the records after it',
      );
      if (releaseUnattempted && failed.length > 1) {
        await releaseUnattempted(failed.slice(1)).catch((error: unknown) => {
          logger.warn(
            { err: error },
            'could not release the unattempted records; they return after the visibility timeout',
          );
        });
      }
      return { batchItemFailures: failed.map((failure) => ({ itemIdentifier: failure.messageId })) };
    }
    return { batchItemFailures: [] };
  };
}

export type SqsBatchHandler = ReturnType<typeof createSqsBatchHandler>;
