import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Logger } from '../shared/logger.js';
import { TimeoutError, withTimeout } from '../shared/timeout.js';
import { receiveCountOf, type SqsMessageOutcome, type SqsMessageSettler } from './sqs-purchase-message.js';

export interface SqsPurchaseWorkerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Runs the purchase step for a message and classifies the result. */
  settle: SqsMessageSettler;
  logger: Logger;
  /** Messages handled at once by this process. */
  concurrency: number;
  /** Long-poll wait per ReceiveMessage, 0 to 20 seconds. */
  waitTimeSeconds: number;
  /**
   * How long a received message stays hidden from other consumers. While its purchase runs the
   * worker extends it every third of this, so only a worker that died lets it reappear.
   */
  visibilityTimeoutSeconds: number;
}

/** SQS hands out at most this many messages per ReceiveMessage. */
const MAX_MESSAGES_PER_RECEIVE = 10;

interface Delivery {
  message: Message;
  /** Set at the shutdown deadline: the message was made visible again for another worker. */
  handedBack: boolean;
  stopHeartbeat(): Promise<void>;
  /** Settles when the message has been handled and deleted or delayed. */
  done: Promise<void>;
}

/**
 * Long-polls an SQS queue and feeds each message to the purchase step, `concurrency` at a time.
 * A message is deleted once it is settled (processed, failed for good, or its failure recorded
 * on the last receive); a transient failure leaves it in the queue, hidden for a backoff that
 * doubles with its receive count, after which SQS delivers it again (and dead-letters it past
 * the queue's maxReceiveCount).
 */
export function createSqsPurchaseWorker(options: SqsPurchaseWorkerOptions) {
  const { sqs, queueUrl, settle, logger, concurrency, waitTimeSeconds, visibilityTimeoutSeconds } = options;
  const deliveries = new Set<Delivery>();
  // Two signals: `stopped` ends waits at once when closing; `receiving` cuts a long poll short,
  // which only happens at the shutdown deadline, because SQS may still hand messages to a poll
  // whose client has gone (they then stay hidden for their visibility timeout).
  const stopped = new AbortController();
  const receiving = new AbortController();
  let stopping = false;
  let slotFreed: (() => void) | undefined;
  let polling: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const freeSlot = () => {
    const resolve = slotFreed;
    slotFreed = undefined;
    resolve?.();
  };

  async function changeVisibility(message: Message, seconds: number): Promise<void> {
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: message.ReceiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }

  function startHeartbeat(message: Message): () => Promise<void> {
    let beat: Promise<void> = Promise.resolve();
    const timer = setInterval(
      () => {
        beat = changeVisibility(message, visibilityTimeoutSeconds).catch((error: unknown) => {
          logger.warn({ err: error, messageId: message.MessageId }, 'could not extend the message visibility');
        });
      },
      Math.max(1_000, (visibilityTimeoutSeconds * 1_000) / 3),
    );
    // A final visibility change must not race with a heartbeat still in flight.
    return async () => {
      clearInterval(timer);
      await beat;
    };
  }

  async function finish(delivery: Delivery, outcome: SqsMessageOutcome): Promise<void> {
    const { message } = delivery;
    if (outcome.settled) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle })).catch(
        (error: unknown) => {
          // It comes back after its visibility timeout; the step then finds the payment.
          logger.warn({ err: error, messageId: message.MessageId }, 'could not delete a settled message');
        },
      );
    } else if (!delivery.handedBack) {
      await changeVisibility(message, outcome.retryDelaySeconds).catch((error: unknown) => {
        logger.warn({ err: error, messageId: message.MessageId }, 'could not delay the retry');
      });
    }
  }

  async function handle(delivery: Delivery): Promise<void> {
    const { message } = delivery;
    let outcome: SqsMessageOutcome;
    try {
      outcome = await settle({
        messageId: message.MessageId ?? '',
        body: message.Body ?? '',
        receiveCount: receiveCountOf(message.Attributes),
      });
    } finally {
      await delivery.stopHeartbeat();
    }
    await finish(delivery, outcome);
  }

  function start(message: Message): void {
    const delivery: Delivery = {
      message,
      handedBack: false,
      stopHeartbeat: startHeartbeat(message),
      done: Promise.resolve(),
    };
    deliveries.add(delivery);
    delivery.done = handle(delivery)
      .catch((error: unknown) => logger.error({ err: error, messageId: message.MessageId }, 'message handling failed'))
      .finally(() => {
        deliveries.delete(delivery);
        freeSlot();
      });
  }

  async function poll(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      if (deliveries.size >= concurrency) {
        await new Promise<void>((resolve) => (slotFreed = resolve));
        continue;
      }
      let messages: Message[];
      try {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(MAX_MESSAGES_PER_RECEIVE, concurrency - deliveries.size),
            WaitTimeSeconds: waitTimeSeconds,
            VisibilityTimeout: visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          { abortSignal: receiving.signal },
        );
        messages = received.Messages ?? [];
        if (failures > 0) logger.info('receiving from the queue again');
        failures = 0;
      } catch (error) {
        if (stopping) break;
        failures++;
        if (failures === 1) logger.warn({ err: error, queueUrl }, 'could not receive from the queue; retrying');
        // 0.5 s, doubling up to 10 s, so an SQS outage is not a busy loop.
        await sleep(Math.min(500 * 2 ** (failures - 1), 10_000), undefined, { signal: stopped.signal }).catch(
          () => {},
        );
        continue;
      }
      if (stopping) {
        // A poll that returned after close() began: give its messages straight back.
        await Promise.all(messages.map((message) => changeVisibility(message, 0).catch(() => {})));
        break;
      }
      for (const message of messages) start(message);
    }
  }

  return {
    /** Polls until `close()`; resolves when polling has stopped. */
    run(): Promise<void> {
      polling ??= poll();
      return polling;
    },

    /**
     * Stops receiving and waits, within `timeoutMs` in all, for the current long poll to return
     * and the messages in flight to finish. Past the deadline it cuts the poll short and hands
     * the unfinished messages back (visible again at once, for another worker; the step is
     * idempotent, so a purchase that still finishes here is not charged twice). Keep the
     * long-poll wait below `timeoutMs` so a shutdown need not cut a poll short. Idempotent.
     */
    close(timeoutMs: number): Promise<void> {
      closing ??= (async () => {
        const deadline = Date.now() + timeoutMs;
        const timeLeft = () => Math.max(deadline - Date.now(), 0);
        stopping = true;
        stopped.abort();
        freeSlot();
        if (polling) {
          await withTimeout(polling, timeLeft(), 'the current long poll').catch(async (error: unknown) => {
            if (!(error instanceof TimeoutError)) throw error;
            receiving.abort();
            await polling;
          });
        }
        const settled = Promise.all([...deliveries].map((delivery) => delivery.done));
        try {
          await withTimeout(settled, timeLeft(), 'finishing in-flight purchases');
        } catch (error) {
          if (!(error instanceof TimeoutError)) throw error;
          logger.warn(
            { timeoutMs, inFlight: deliveries.size },
            'purchases still running at the shutdown deadline; handing them back',
          );
          await Promise.all(
            [...deliveries].map(async (delivery) => {
              delivery.handedBack = true;
              await delivery.stopHeartbeat();
              await changeVisibility(delivery.message, 0).catch(() => {});
            }),
          );
        }
      })();
      return closing;
    },
  };
}

export type SqsPurchaseWorker = ReturnType<typeof createSqsPurchaseWorker>;
