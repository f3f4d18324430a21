import { setTimeout as sleep } from 'node:timers/promises';
import { ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../../shared/logger.js';
import { TimeoutError, withTimeout } from '../../shared/timeout.js';
import { deliver, type Delivery } from './delivery.js';
import type { SqsMessageSettler } from './message-settler.js';
import { changeVisibility } from './visibility.js';

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

/**
 * Long-polls an SQS queue and hands each message to a delivery (delivery.ts: the purchase step,
 * then delete or retry), `concurrency` at a time; on close, stops polling and drains within a
 * deadline, handing back what is still running.
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

  const setVisibility = (message: Message, seconds: number) =>
    changeVisibility(sqs, queueUrl, message.ReceiptHandle, seconds);

  function start(message: Message): void {
    const delivery = deliver({ sqs, queueUrl, settle, logger, visibilityTimeoutSeconds }, message);
    deliveries.add(delivery);
    void delivery.done.finally(() => {
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
        await sleep(Math.min(500 * 2 ** (failures - 1), 10_000), undefined, { signal: stopped.signal }).catch(() => {});
        continue;
      }
      if (stopping) {
        // A poll that returned after close() began: give its messages straight back.
        await Promise.all(messages.map((message) => setVisibility(message, 0).catch(() => {})));
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
          await Promise.all([...deliveries].map((delivery) => delivery.handBack()));
        }
      })();
      return closing;
    },
  };
}

export type SqsPurchaseWorker = ReturnType<typeof createSqsPurchaseWorker>;
