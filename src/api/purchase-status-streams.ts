import type { Logger } from '../shared/logger.js';
import { isFinal, type Purchase, type PurchaseStatus } from '../shared/purchase/purchase.js';
import type { PurchaseWatch, PurchaseWatches } from './purchase-watches.js';

/** Where a stream writes: the client's open response. */
export interface StatusStreamSink {
  /** One event: the purchase as a status read gives it. */
  send(purchase: Purchase): void;
  /** A comment, so the connection never goes idle (CONNECTION_TIMEOUT_MS would cut it). */
  keepAlive(): void;
  /** Ends the response. */
  end(): void;
}

export interface PurchaseStatusStreamsOptions {
  /** The process's subscription to the worker's announcements, shared with `Prefer: wait`. */
  watches: PurchaseWatches;
  logger: Logger;
  /** Most streams held at once; further ones are refused. Default 1000. */
  maxStreams?: number;
  /** A stream still open this long after it started is ended (the client reconnects). Default 5 minutes. */
  maxDurationMs?: number;
  /**
   * How often every stream gets a keep-alive comment, and its purchase is read again in case an
   * announcement was missed. Default 15 s.
   */
  keepAliveIntervalMs?: number;
}

/** Statuses in the order a purchase goes through them: a stream never steps back. */
const STAGE: Record<PurchaseStatus, number> = { queued: 0, processing: 1, succeeded: 2, failed: 2 };

interface Stream {
  watch: PurchaseWatch;
  sink: StatusStreamSink;
  finish: () => void;
}

/**
 * The events streams of purchases (`GET /payment/purchase/:id/events`): each sends its
 * purchase's current status, then one event per change, and ends after the final one. A stream
 * reads its purchase again when the worker announces it (processing, then its outcome), after a
 * resubscription, and at every keep-alive in case an announcement was missed; it sends only a
 * status further along than the last one sent. Streams are bounded in number (`maxStreams`) and
 * in time (`maxDurationMs`), and end at once when their client goes.
 */
export function createPurchaseStatusStreams(options: PurchaseStatusStreamsOptions) {
  const { watches, logger } = options;
  const maxStreams = options.maxStreams ?? 1_000;
  const maxDurationMs = options.maxDurationMs ?? 5 * 60_000;
  const keepAliveIntervalMs = options.keepAliveIntervalMs ?? 15_000;
  const streams = new Set<Stream>();
  let ticker: NodeJS.Timeout | undefined;
  let saturated = false;
  let closed = false;

  /** Reads every stream's purchase (POLL_READS_AT_ONCE at a time); one poll at a time. */
  const pollAll = watches.poll(() => [...streams].map((stream) => stream.watch));
  function tick(): void {
    for (const stream of streams) stream.sink.keepAlive();
    void pollAll();
  }

  return {
    /**
     * Starts a stream of `first` (the purchase as just read: sent at once) to `sink`; `read`
     * gives the purchase as the client would see it. Returns null, sending nothing, when
     * `maxStreams` streams are open or the registry is closed; otherwise `stop()` ends the stream
     * (call it when the client goes).
     */
    open(first: Purchase, read: () => Promise<Purchase | null>, sink: StatusStreamSink): { stop(): void } | null {
      if (closed || streams.size >= maxStreams) {
        if (!saturated && !closed && maxStreams > 0) {
          logger.warn({ maxStreams }, 'every events stream place is taken; refusing streams');
        }
        saturated = true;
        return null;
      }
      sink.send(first);
      if (isFinal(first.status)) {
        sink.end();
        return { stop: () => {} };
      }

      let sent: PurchaseStatus = first.status;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        stream.watch.stop();
        streams.delete(stream);
        if (streams.size < maxStreams) saturated = false;
        if (streams.size === 0) {
          clearInterval(ticker);
          ticker = undefined;
        }
        sink.end();
      };
      const timer = setTimeout(finish, maxDurationMs);
      const stream: Stream = {
        sink,
        finish,
        watch: watches.watch(first.purchaseId, read, (purchase) => {
          if (done || STAGE[purchase.status] <= STAGE[sent]) return;
          sent = purchase.status;
          sink.send(purchase);
          if (isFinal(purchase.status)) finish();
        }),
      };
      streams.add(stream);
      ticker ??= setInterval(tick, keepAliveIntervalMs);
      // What was announced between the first read and now was heard by nobody: read once more.
      void stream.watch.refresh();
      return { stop: finish };
    },

    /** How many streams are open now (tests and metrics). */
    streaming(): number {
      return streams.size;
    },

    /** Ends every stream (their clients may reconnect elsewhere) so HTTP can drain, and refuses new ones. */
    close(): void {
      closed = true;
      for (const stream of [...streams]) stream.finish();
    },
  };
}

export type PurchaseStatusStreams = ReturnType<typeof createPurchaseStatusStreams>;
