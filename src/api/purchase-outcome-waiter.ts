import type { Logger } from '../shared/logger.js';
import { isFinal, type Purchase } from '../shared/purchase/purchase.js';
import type { PurchaseWatch, PurchaseWatches } from './purchase-watches.js';

/** What a client asked for with `Prefer: wait`. */
export interface OutcomeWaitRequest {
  /** When to stop waiting (epoch ms), counted from the request's arrival. */
  deadline: number;
  /** Aborted when the client has gone: the wait ends at once and frees its place. */
  signal?: AbortSignal | undefined;
}

export interface OutcomeWait {
  /**
   * The finished purchase; null once the deadline passed, or the wait was cancelled (the client
   * left, the purchase was not queued, a shutdown). Never rejects.
   */
  outcome: Promise<Purchase | null>;
  /** Ends the wait now; `outcome` resolves null. */
  cancel(): void;
}

export interface PurchaseOutcomeWaiterOptions {
  /** The process's subscription to the worker's announcements, shared with the events streams. */
  watches: PurchaseWatches;
  logger: Logger;
  /** Most waits held at once; further ones are refused (their clients get the 202 at once). Default 1000. */
  maxWaiters?: number;
  /** How often every wait's purchase is read in case its announcement was missed. Default 2000 ms. */
  pollIntervalMs?: number;
}

interface Waiting {
  watch: PurchaseWatch;
  settle: (purchase: Purchase | null) => void;
  settled: boolean;
}

/**
 * Lets requests that sent `Prefer: wait=N` sleep until the worker announces their purchase's
 * outcome (Redis pub/sub, or Postgres LISTEN/NOTIFY). One subscription serves every waiting
 * request, whichever queue driver runs the jobs. Waits are bounded in number (`maxWaiters`) and in time
 * (a deadline each, and cancelled when the client leaves). In case an announcement is missed (a
 * Redis reconnect drops what is published meanwhile), one poll every `pollIntervalMs` reads
 * every waiting purchase, in batches; a missed announcement then costs at most that long.
 */
export function createPurchaseOutcomeWaiter(options: PurchaseOutcomeWaiterOptions) {
  const { watches, logger } = options;
  const maxWaiters = options.maxWaiters ?? 1_000;
  const pollIntervalMs = options.pollIntervalMs ?? 2_000;
  const waits = new Set<Waiting>();
  let poller: NodeJS.Timeout | undefined;
  let saturated = false;
  let closed = false;

  /** Reads every waiting purchase (POLL_READS_AT_ONCE at a time); one poll at a time. */
  // A settled wait leaves `waits` in the same step, so every wait here is still open.
  const pollAll = watches.poll(() => [...waits].map((waiting) => waiting.watch));

  return {
    /**
     * Registers interest in `purchaseId` until `request.deadline`; `read` gives the purchase as
     * the client would see it. Register before enqueueing, so a fast worker cannot finish unseen.
     * Returns null, without waiting, when `maxWaiters` waits are already held, the deadline has
     * passed, the client has already gone or the waiter is closed.
     */
    waitForOutcome(
      purchaseId: string,
      request: OutcomeWaitRequest,
      read: () => Promise<Purchase | null>,
    ): OutcomeWait | null {
      const { deadline, signal } = request;
      if (closed || signal?.aborted || deadline <= Date.now()) return null;
      if (waits.size >= maxWaiters) {
        if (!saturated && maxWaiters > 0) {
          logger.warn({ maxWaiters }, 'every Prefer: wait place is taken; answering 202 without waiting');
        }
        saturated = true;
        return null;
      }

      let resolve: (purchase: Purchase | null) => void = () => {};
      const outcome = new Promise<Purchase | null>((settle) => (resolve = settle));
      const cancel = () => waiting.settle(null);
      const timer = setTimeout(cancel, deadline - Date.now());
      const waiting: Waiting = {
        watch: watches.watch(purchaseId, read, (purchase) => {
          if (isFinal(purchase.status)) waiting.settle(purchase);
        }),
        settled: false,
        settle: (purchase) => {
          if (waiting.settled) return;
          waiting.settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', cancel);
          waiting.watch.stop();
          waits.delete(waiting);
          if (waits.size < maxWaiters) saturated = false;
          if (waits.size === 0) {
            clearInterval(poller);
            poller = undefined;
          }
          resolve(purchase);
        },
      };
      signal?.addEventListener('abort', cancel, { once: true });
      waits.add(waiting);
      // One timer for every wait: N waits cost one poll per interval, not N.
      poller ??= setInterval(() => void pollAll(), pollIntervalMs);
      return { outcome, cancel };
    },

    /** How many requests are waiting now (tests and metrics). */
    waiting(): number {
      return waits.size;
    },

    /** Ends every wait (their requests answer 202) so HTTP can drain, and refuses new ones. */
    close(): void {
      closed = true;
      for (const waiting of [...waits]) waiting.settle(null);
    },
  };
}

export type PurchaseOutcomeWaiter = ReturnType<typeof createPurchaseOutcomeWaiter>;
