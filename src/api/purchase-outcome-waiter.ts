import type { Logger } from '../shared/logger.js';
import { isFinal, type Purchase } from '../shared/purchase/purchase.js';
import type { PurchaseEventSource, PurchaseFinishedEvent } from '../shared/purchase/purchase-states.js';

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
  /** Where the worker's announcements arrive (Redis pub/sub or Postgres LISTEN/NOTIFY). */
  events: PurchaseEventSource;
  logger: Logger;
  /** Most waits held at once; further ones are refused (their clients get the 202 at once). Default 1000. */
  maxWaiters?: number;
  /** How often every wait's purchase is read in case its announcement was missed. Default 2000 ms. */
  pollIntervalMs?: number;
}

/**
 * Most status reads a poll has in flight at once: one batch of the payments finder, so a poll
 * costs one statement per this many waits, one statement at a time, and never takes more than
 * one connection of the pool that requests and the readiness check share.
 */
export const POLL_READS_AT_ONCE = 100;

interface Waiting {
  read: () => Promise<Purchase | null>;
  settle: (purchase: Purchase | null) => void;
  settled: boolean;
  /** The read under way, so an announcement and a poll never read the same purchase twice at once. */
  reading?: Promise<void> | undefined;
  /** An announcement came while a read was under way: read again once it is done. */
  readAgain: boolean;
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
  const { events, logger } = options;
  const maxWaiters = options.maxWaiters ?? 1_000;
  const pollIntervalMs = options.pollIntervalMs ?? 2_000;
  const waits = new Map<string, Set<Waiting>>();
  let count = 0;
  let poller: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;
  let saturated = false;
  let closed = false;

  /** Reads the purchase and settles the wait if it has finished; a failed read waits for the next poll. */
  function check(waiting: Waiting): Promise<void> {
    if (waiting.reading) {
      waiting.readAgain = true;
      return waiting.reading;
    }
    waiting.reading = (async () => {
      do {
        waiting.readAgain = false;
        const purchase = await waiting.read().catch(() => null);
        if (purchase && isFinal(purchase.status)) waiting.settle(purchase);
      } while (waiting.readAgain && !waiting.settled);
    })().finally(() => {
      waiting.reading = undefined;
    });
    return waiting.reading;
  }

  /** Reads every waiting purchase, POLL_READS_AT_ONCE at a time; one poll at a time. */
  function pollAll(): Promise<void> {
    polling ??= (async () => {
      const all = [...waits.values()].flatMap((set) => [...set]);
      for (let start = 0; start < all.length; start += POLL_READS_AT_ONCE) {
        const batch = all.slice(start, start + POLL_READS_AT_ONCE).filter((waiting) => !waiting.settled);
        await Promise.all(batch.map(check));
      }
    })().finally(() => {
      polling = undefined;
    });
    return polling;
  }

  function onMessage(message: string): void {
    // Every finished purchase is announced; most have nobody waiting, so parse nothing then.
    if (closed || count === 0) return;
    let event: PurchaseFinishedEvent;
    try {
      event = JSON.parse(message) as PurchaseFinishedEvent;
    } catch {
      logger.warn({ message }, 'ignoring malformed purchase event');
      return;
    }
    // The event only names the purchase; the answer is the purchase as a status read gives it.
    for (const waiting of waits.get(event.purchaseId) ?? []) void check(waiting);
  }

  /** After a reconnect the subscription is back, but what was announced meanwhile is gone: read now. */
  function onResubscribed(): void {
    if (!closed && count > 0) void pollAll();
  }

  events.onMessage(onMessage);
  events.onResubscribed(onResubscribed);

  return {
    /** Subscribes to the announcements; resolves once subscribed. Until then waits are answered by the poll. */
    start(): Promise<void> {
      return events.start();
    },

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
      if (count >= maxWaiters) {
        if (!saturated && maxWaiters > 0) {
          logger.warn({ maxWaiters }, 'every Prefer: wait place is taken; answering 202 without waiting');
        }
        saturated = true;
        return null;
      }

      let resolve: (purchase: Purchase | null) => void = () => {};
      const outcome = new Promise<Purchase | null>((settle) => (resolve = settle));
      const waiting: Waiting = { read, settled: false, readAgain: false, settle: () => {} };
      const cancel = () => waiting.settle(null);
      const timer = setTimeout(cancel, deadline - Date.now());
      waiting.settle = (purchase) => {
        if (waiting.settled) return;
        waiting.settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', cancel);
        const set = waits.get(purchaseId);
        set?.delete(waiting);
        if (set?.size === 0) waits.delete(purchaseId);
        count--;
        if (count < maxWaiters) saturated = false;
        if (count === 0) {
          clearInterval(poller);
          poller = undefined;
        }
        resolve(purchase);
      };
      signal?.addEventListener('abort', cancel, { once: true });

      let set = waits.get(purchaseId);
      if (!set) waits.set(purchaseId, (set = new Set()));
      set.add(waiting);
      count++;
      // One timer for every wait: N waits cost one poll per interval, not N.
      poller ??= setInterval(() => void pollAll(), pollIntervalMs);
      return { outcome, cancel };
    },

    /** How many requests are waiting now (tests and metrics). */
    waiting(): number {
      return count;
    },

    /** Ends every wait (their requests answer 202) so HTTP can drain, and refuses new ones. */
    close(): void {
      closed = true;
      for (const set of [...waits.values()]) for (const waiting of [...set]) waiting.settle(null);
    },
  };
}

export type PurchaseOutcomeWaiter = ReturnType<typeof createPurchaseOutcomeWaiter>;
