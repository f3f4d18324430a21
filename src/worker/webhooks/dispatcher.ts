import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/logger.js';
import type {
  AttemptResult,
  ClaimedDelivery,
  WebhookDeliveriesRepository,
} from '../../shared/webhooks/deliveries-repository.js';
import { signedHeaders } from '../../shared/webhooks/signing.js';

/** The longest wait between two attempts of a delivery. */
const MAX_BACKOFF_MS = 3_600_000;

export interface WebhookDispatcherDeps {
  deliveries: Pick<WebhookDeliveriesRepository, 'claimDue' | 'recordAttempt'>;
  /** Sends one delivery (src/worker/webhooks/send.ts); never rejects. */
  send: (url: string, headers: Record<string, string>, body: string) => Promise<AttemptResult>;
  logger: Logger;
  /** Deliveries sent at once. */
  concurrency: number;
  /** WEBHOOK_TIMEOUT_MS: the lease is this plus `leaseMarginMs`. */
  timeoutMs: number;
  /**
   * WEBHOOK_LEASE_MARGIN_MS: how long past `timeoutMs` a taken delivery stays this dispatcher's,
   * to record its attempt; after a crash, how late another dispatcher sends it again.
   */
  leaseMarginMs: number;
  /** WEBHOOK_RETRY_BASE_MS: the first retry delay, doubling with every attempt up to an hour. */
  retryBaseMs: number;
  /** WEBHOOK_RETRY_HOURS: how long after its retries started a delivery is given up. */
  retryHours: number;
  now?: () => number;
  /** A number in [0, 1) for the backoff's jitter. */
  random?: () => number;
}

/**
 * The webhook dispatcher: takes due deliveries from the outbox (a lease each), signs and sends
 * them, and records every attempt. A 2xx is delivered; anything else is retried with exponential
 * backoff (and ±10 % jitter, so a recovering endpoint is not hit by every retry at once) until
 * WEBHOOK_RETRY_HOURS have passed, then marked failed. At least once: a dispatcher that dies
 * mid-send leaves the lease to expire and another sends the same event (same `webhook-id`)
 * again. Deliveries of one endpoint are not ordered.
 */
export function createWebhookDispatcher(deps: WebhookDispatcherDeps) {
  const { deliveries, send, logger, concurrency, timeoutMs, leaseMarginMs, retryBaseMs, retryHours } = deps;
  const leaseMs = timeoutMs + leaseMarginMs;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;

  /** When to try again after `attempt` failed, or null when its retries are over. */
  function retryAt(delivery: ClaimedDelivery): Date | null {
    const backoff = Math.min(retryBaseMs * 2 ** Math.min(delivery.attempt - 1, 30), MAX_BACKOFF_MS);
    const next = now() + backoff * (0.9 + 0.2 * random());
    return next > delivery.retryStartedAt.getTime() + retryHours * 3_600_000 ? null : new Date(next);
  }

  async function deliver(delivery: ClaimedDelivery): Promise<void> {
    const result: AttemptResult = delivery.endpointRemoved
      ? { statusCode: null, error: 'the endpoint was removed', durationMs: 0, delivered: false }
      : await send(
          delivery.url,
          signedHeaders({ id: delivery.eventId, payload: delivery.payload }, delivery.secrets),
          delivery.payload,
        );
    const next = result.delivered || delivery.endpointRemoved ? null : retryAt(delivery);
    await deliveries.recordAttempt(delivery, result, next);
    if (!result.delivered) {
      logger.warn(
        {
          eventId: delivery.eventId,
          deliveryId: delivery.id,
          attempt: delivery.attempt,
          error: result.error,
          retryAt: next,
        },
        next ? 'webhook delivery failed; will retry' : 'webhook delivery failed for good',
      );
    }
  }

  /** Sends a delivery and records it; a failure to record is logged, never thrown. */
  function deliverLogged(delivery: ClaimedDelivery): Promise<void> {
    return deliver(delivery).catch((error: unknown) => {
      // Recording failed (Postgres away): the lease runs out and the delivery is taken again.
      logger.warn({ err: error, eventId: delivery.eventId }, 'could not record a webhook attempt');
    });
  }

  /** One pass: takes up to `concurrency` due deliveries and sends them all; resolves with how many. */
  async function dispatchOnce(): Promise<number> {
    const due = await deliveries.claimDue(concurrency, leaseMs);
    await Promise.all(due.map(deliverLogged));
    return due.length;
  }

  return {
    dispatchOnce,

    /**
     * Keeps up to `concurrency` deliveries in flight until `stop()`: whenever one finishes, the
     * freed place takes the next due delivery, so an endpoint that is slow to answer holds only
     * its own places, never the others' deliveries. With nothing due it looks again every
     * `intervalMs`. Returns `stop`, which resolves once the deliveries in flight have finished.
     */
    start(intervalMs: number): { stop(): Promise<void> } {
      let stopping = false;
      const wake = new AbortController();
      const inFlight = new Set<Promise<void>>();
      const loop = (async () => {
        while (!stopping) {
          const free = concurrency - inFlight.size;
          const due = await deliveries.claimDue(free, leaseMs).catch((error: unknown) => {
            logger.warn({ err: error }, 'webhook dispatch failed; trying again');
            return [];
          });
          for (const delivery of due) {
            const sending: Promise<void> = deliverLogged(delivery).finally(() => inFlight.delete(sending));
            inFlight.add(sending);
          }
          if (stopping) break;
          if (inFlight.size >= concurrency) await Promise.race(inFlight);
          else await sleep(intervalMs, undefined, { signal: wake.signal }).catch(() => {});
        }
        await Promise.all(inFlight);
      })();
      return {
        async stop() {
          stopping = true;
          wake.abort();
          await loop;
        },
      };
    },
  };
}
