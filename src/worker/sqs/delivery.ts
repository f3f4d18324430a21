import { DeleteMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../../shared/logger.js';
import { receiveCountOf, type SqsMessageOutcome, type SqsMessageSettler } from './message-settler.js';
import { changeVisibility, startVisibilityHeartbeat } from './visibility.js';

export interface DeliveryOptions {
  sqs: SQSClient;
  queueUrl: string;
  settle: SqsMessageSettler;
  logger: Logger;
  /** How long the message stays hidden; the heartbeat extends it while the purchase runs. */
  visibilityTimeoutSeconds: number;
}

/** One received message on its way through the purchase step. */
export interface Delivery {
  message: Message;
  /** Settles (never rejects) once the message has been handled and deleted or delayed. */
  done: Promise<void>;
  /**
   * Gives the message back for another worker (visible again at once), at the shutdown
   * deadline; whatever the step still does here then leaves the message alone.
   */
  handBack(): Promise<void>;
}

/**
 * Runs one message through the purchase step while a heartbeat keeps it hidden, then settles it
 * on SQS: deleted once settled (processed, failed for good, or its failure recorded on the last
 * receive), or hidden for the retry backoff after a transient failure, after which SQS delivers
 * it again (and dead-letters it past the queue's maxReceiveCount).
 */
export function deliver(options: DeliveryOptions, message: Message): Delivery {
  const { sqs, queueUrl, settle, logger, visibilityTimeoutSeconds } = options;
  let handedBack = false;
  const stopHeartbeat = startVisibilityHeartbeat({
    sqs,
    queueUrl,
    receiptHandle: message.ReceiptHandle,
    messageId: message.MessageId,
    visibilityTimeoutSeconds,
    logger,
  });

  async function finish(outcome: SqsMessageOutcome): Promise<void> {
    if (outcome.settled) {
      await sqs
        .send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }))
        .catch((error: unknown) => {
          // It comes back after its visibility timeout; the step then finds the payment.
          logger.warn({ err: error, messageId: message.MessageId }, 'could not delete a settled message');
        });
    } else if (!handedBack) {
      await changeVisibility(sqs, queueUrl, message.ReceiptHandle, outcome.retryDelaySeconds).catch(
        (error: unknown) => {
          logger.warn({ err: error, messageId: message.MessageId }, 'could not delay the retry');
        },
      );
    }
  }

  async function handle(): Promise<void> {
    let outcome: SqsMessageOutcome;
    try {
      outcome = await settle({
        messageId: message.MessageId ?? '',
        body: message.Body ?? '',
        receiveCount: receiveCountOf(message.Attributes),
      });
    } finally {
      await stopHeartbeat();
    }
    await finish(outcome);
  }

  return {
    message,
    done: handle().catch((error: unknown) =>
      logger.error({ err: error, messageId: message.MessageId }, 'message handling failed'),
    ),
    async handBack() {
      handedBack = true;
      await stopHeartbeat();
      await changeVisibility(sqs, queueUrl, message.ReceiptHandle, 0).catch(() => {});
    },
  };
}
