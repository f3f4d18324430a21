import type { Logger } from '../shared/logger.js';
import type { Purchase } from '../shared/purchase/purchase.js';
import type { PurchaseEventSource, PurchaseStatusEvent } from '../shared/purchase/purchase-states.js';

/**
 * Most status reads a round of refreshes has in flight at once: one batch of the payments
 * finder, so a round costs one statement per this many watches, one statement at a time, and
 * never takes more than one connection of the pool that requests and the readiness check share.
 */
export const POLL_READS_AT_ONCE = 100;

/** Interest in one purchase's status, held by a `Prefer: wait` request or an events stream. */
export interface PurchaseWatch {
  /**
   * Reads the purchase and hands it to the watch's `seen`. Reads of one watch never overlap: a
   * refresh during a read makes one more read after it. A failed read is skipped (the next
   * announcement or poll reads again). Never rejects.
   */
  refresh(): Promise<void>;
  /** Stops hearing of the purchase; a read under way is not handed on. Idempotent. */
  stop(): void;
}

export interface PurchaseWatchesOptions {
  /** Where the worker's announcements arrive (Redis pub/sub or Postgres LISTEN/NOTIFY). */
  events: PurchaseEventSource;
  logger: Logger;
}

/**
 * The API process's one subscription to the worker's announcements, fanned out to every
 * watch of the announced purchase (`Prefer: wait` requests, events streams): a watch reads its
 * purchase when it is announced, and every watch reads again after a resubscription, since what
 * was announced meanwhile is gone. An announcement only names the purchase; what a watch sees
 * is the purchase as a status read gives it. Owners poll their own watches (`poll`) for
 * announcements missed without a resubscription being noticed.
 */
export function createPurchaseWatches(options: PurchaseWatchesOptions) {
  const { events, logger } = options;
  const watches = new Map<string, Set<PurchaseWatch>>();

  /** Refreshes `list`, POLL_READS_AT_ONCE at a time. */
  async function refreshEach(list: Iterable<PurchaseWatch>): Promise<void> {
    const all = [...list];
    for (let start = 0; start < all.length; start += POLL_READS_AT_ONCE) {
      await Promise.all(all.slice(start, start + POLL_READS_AT_ONCE).map((watch) => watch.refresh()));
    }
  }

  events.onMessage((message) => {
    // Every change of every purchase is announced; most have nobody watching, so parse nothing then.
    if (watches.size === 0) return;
    let event: PurchaseStatusEvent;
    try {
      event = JSON.parse(message) as PurchaseStatusEvent;
    } catch {
      logger.warn({ message }, 'ignoring malformed purchase event');
      return;
    }
    for (const watch of watches.get(event.purchaseId) ?? []) void watch.refresh();
  });
  events.onResubscribed(() => {
    if (watches.size > 0) void refreshEach([...watches.values()].flatMap((set) => [...set]));
  });

  return {
    /** Subscribes to the announcements; resolves once subscribed. Idempotent. */
    start(): Promise<void> {
      return events.start();
    },

    /**
     * Watches `purchaseId` until `stop()`: `read` gives the purchase as the client would see it
     * (null: not found), and `seen` gets each purchase read. Reading starts with the first
     * announcement or refresh.
     */
    watch(purchaseId: string, read: () => Promise<Purchase | null>, seen: (purchase: Purchase) => void): PurchaseWatch {
      let stopped = false;
      let reading: Promise<void> | undefined;
      let readAgain = false;
      const watch: PurchaseWatch = {
        refresh() {
          if (reading) {
            readAgain = true;
            return reading;
          }
          reading = (async () => {
            do {
              readAgain = false;
              const purchase = await read().catch(() => null);
              if (purchase && !stopped) seen(purchase);
            } while (readAgain && !stopped);
          })().finally(() => {
            reading = undefined;
          });
          return reading;
        },
        stop() {
          if (stopped) return;
          stopped = true;
          const set = watches.get(purchaseId);
          set?.delete(watch);
          if (set?.size === 0) watches.delete(purchaseId);
        },
      };
      let set = watches.get(purchaseId);
      if (!set) watches.set(purchaseId, (set = new Set()));
      set.add(watch);
      return watch;
    },

    /**
     * A poll of its owner's watches: each call refreshes `current()`'s watches
     * (`refreshEach`); a call while a poll runs joins it, so a slow poll never overlaps the next.
     */
    poll(current: () => Iterable<PurchaseWatch>): () => Promise<void> {
      let running: Promise<void> | undefined;
      return () =>
        (running ??= refreshEach(current()).finally(() => {
          running = undefined;
        }));
    },
  };
}

export type PurchaseWatches = ReturnType<typeof createPurchaseWatches>;
