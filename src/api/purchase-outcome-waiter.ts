import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.js';
import type { PurchaseFinishedEvent } from '../shared/redis/purchase-state-store.js';

export interface OutcomeWait {
  /** Resolves true when the purchase finished, false when the time ran out or was cancelled. */
  finished: Promise<boolean>;
  cancel(): void;
}

/**
 * Lets requests that sent `Prefer: wait=N` sleep until the worker announces their purchase's
 * outcome on the Redis events channel. One subscriber connection serves every waiting request,
 * whichever queue driver runs the jobs. A missed announcement only costs the wait: the client
 * then gets the usual 202 and polls.
 */
export function createPurchaseOutcomeWaiter(options: { subscriber: Redis; channel: string; logger: Logger }) {
  const { subscriber, channel, logger } = options;
  const waiters = new Map<string, Set<(finished: boolean) => void>>();
  let subscribed: Promise<unknown> | undefined;

  subscriber.on('message', (from: string, message: string) => {
    // Every finished purchase is announced; most have nobody waiting, so parse nothing then.
    if (from !== channel || waiters.size === 0) return;
    let event: PurchaseFinishedEvent;
    try {
      event = JSON.parse(message) as PurchaseFinishedEvent;
    } catch {
      logger.warn({ message }, 'ignoring malformed purchase event');
      return;
    }
    const resolvers = waiters.get(event.purchaseId);
    if (!resolvers) return;
    waiters.delete(event.purchaseId);
    for (const resolve of resolvers) resolve(true);
  });

  return {
    /** Subscribes to the events channel; resolves once subscribed. */
    start(): Promise<unknown> {
      subscribed ??= subscriber.subscribe(channel);
      return subscribed;
    },

    /** Registers interest in `purchaseId` for up to `timeoutMs`. Register before enqueueing. */
    waitForOutcome(purchaseId: string, timeoutMs: number): OutcomeWait {
      let settle: (finished: boolean) => void = () => {};
      const finished = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => settle(false), timeoutMs);
        settle = (value) => {
          clearTimeout(timer);
          const set = waiters.get(purchaseId);
          set?.delete(settle);
          if (set?.size === 0) waiters.delete(purchaseId);
          resolve(value);
        };
      });
      let set = waiters.get(purchaseId);
      if (!set) waiters.set(purchaseId, (set = new Set()));
      set.add(settle);
      return { finished, cancel: () => settle(false) };
    },

    /** Wakes every waiter (they answer 202) so HTTP can drain. */
    close(): void {
      for (const set of waiters.values()) for (const settle of [...set]) settle(false);
      waiters.clear();
    },
  };
}

export type PurchaseOutcomeWaiter = ReturnType<typeof createPurchaseOutcomeWaiter>;
