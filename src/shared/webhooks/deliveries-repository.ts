import type { Db } from '../db.js';

/** What became of a delivery: still being tried, delivered, or given up. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** A delivery a dispatcher has taken: what to send, where, and with which secrets. */
export interface ClaimedDelivery {
  id: string;
  eventId: string;
  payload: string;
  /** When its retries started: its creation, or its last redelivery (retries stop WEBHOOK_RETRY_HOURS later). */
  retryStartedAt: Date;
  /** This attempt's number, 1 for the first. */
  attempt: number;
  url: string;
  /** The secrets that sign it: the endpoint's, and the one it rotated out while that still signs. */
  secrets: string[];
  /** The endpoint was removed since the event was written: nothing is sent. */
  endpointRemoved: boolean;
}

/** What one attempt came to. */
export interface AttemptResult {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  delivered: boolean;
}

/** A delivery as `GET /webhook-endpoints/:id/deliveries` shows it. */
export interface DeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  purchaseId: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
  attemptLog: Array<{
    attempt: number;
    statusCode: number | null;
    error: string | null;
    durationMs: number;
    attemptedAt: Date;
  }>;
}

interface DeliveryRow {
  id: string;
  event_id: string;
  type: string;
  purchase_id: string;
  status: DeliveryStatus;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Date;
  delivered_at: Date | null;
  created_at: Date;
}

interface AttemptRow {
  delivery_id: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  attempted_at: Date;
}

interface ClaimedRow {
  id: string;
  event_id: string;
  attempts: number;
  payload: string;
  retry_started_at: Date;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  deleted_at: Date | null;
}

/**
 * The webhook deliveries table as a work queue, and its history. A dispatcher claims due
 * deliveries with a lease (`locked_until`) in one statement (`for update skip locked`, so
 * dispatchers in several workers never take the same one), sends them without holding a
 * connection, then records each attempt. A dispatcher that dies mid-delivery only lets the lease
 * run out: the delivery is taken again, with the same event id (at least once).
 */
export function createWebhookDeliveriesRepository({ db }: { db: Db }) {
  return {
    /** Takes up to `limit` due deliveries for `leaseMs`, counting this attempt, oldest due first. */
    async claimDue(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
      const { rows } = await db.raw<{ rows: ClaimedRow[] }>(
        `with due as (
           select d.id from webhook_deliveries d
           join webhook_events e on e.id = d.event_id
           where d.status = 'pending' and d.next_attempt_at <= now()
             and (d.locked_until is null or d.locked_until < now()) and not e.held
           order by d.next_attempt_at
           limit ?
           for update of d skip locked
         ),
         claimed as (
           update webhook_deliveries d
           set locked_until = now() + make_interval(secs => ?), attempts = d.attempts + 1
           from due where d.id = due.id
           returning d.id, d.event_id, d.endpoint_id, d.attempts, d.retry_started_at
         )
         select c.id, c.event_id, c.attempts, c.retry_started_at, e.payload,
                ep.url, ep.secret, ep.previous_secret, ep.previous_secret_expires_at, ep.deleted_at
         from claimed c
         join webhook_events e on e.id = c.event_id
         join webhook_endpoints ep on ep.id = c.endpoint_id`,
        [limit, leaseMs / 1000],
      );
      const now = Date.now();
      return rows.map((row) => ({
        id: String(row.id),
        eventId: row.event_id,
        payload: row.payload,
        retryStartedAt: row.retry_started_at,
        attempt: row.attempts,
        url: row.url,
        secrets: [
          row.secret,
          ...(row.previous_secret && row.previous_secret_expires_at && row.previous_secret_expires_at.getTime() > now
            ? [row.previous_secret]
            : []),
        ],
        endpointRemoved: row.deleted_at !== null,
      }));
    },

    /**
     * Records an attempt and settles the delivery: delivered, failed for good (`retryAt` null), or
     * pending again from `retryAt`. Releases the lease. Only while the delivery is still this
     * attempt's: a redelivery asked for meanwhile (which releases the lease) or another dispatcher
     * that took it once the lease ran out (which counts another attempt) owns it now, and settling
     * it here would drop that redelivery or overwrite that dispatcher's outcome. The attempt is
     * logged either way.
     */
    async recordAttempt(delivery: ClaimedDelivery, result: AttemptResult, retryAt: Date | null): Promise<void> {
      const status: DeliveryStatus = result.delivered ? 'delivered' : retryAt ? 'pending' : 'failed';
      await db.transaction(async (trx) => {
        await trx('webhook_delivery_attempts').insert({
          delivery_id: delivery.id,
          attempt: delivery.attempt,
          status_code: result.statusCode,
          error: result.error,
          duration_ms: Math.round(result.durationMs),
        });
        await trx('webhook_deliveries')
          .where({ id: delivery.id, attempts: delivery.attempt })
          .whereNotNull('locked_until')
          .update({
            status,
            locked_until: null,
            last_status_code: result.statusCode,
            last_error: result.error,
            last_attempt_at: trx.fn.now(),
            ...(result.delivered ? { delivered_at: trx.fn.now() } : {}),
            ...(retryAt ? { next_attempt_at: retryAt } : {}),
          });
      });
    },

    /**
     * An endpoint's deliveries, newest first, with every attempt, held events left out; the caller
     * has checked the endpoint is the account's.
     */
    async listDeliveries(endpointId: string, limit: number): Promise<DeliveryView[]> {
      const rows = await db('webhook_deliveries as d')
        .join('webhook_events as e', 'e.id', 'd.event_id')
        .where('d.endpoint_id', endpointId)
        .where('e.held', false)
        .orderBy([
          { column: 'd.created_at', order: 'desc' },
          { column: 'd.id', order: 'desc' },
        ])
        .limit(limit)
        .select<DeliveryRow[]>('d.*', 'e.type', 'e.purchase_id');
      const attempts = await db<AttemptRow>('webhook_delivery_attempts')
        .whereIn(
          'delivery_id',
          rows.map((row) => row.id),
        )
        .orderBy('attempt');
      return rows.map((row) => ({
        id: String(row.id),
        eventId: row.event_id,
        eventType: row.type,
        purchaseId: row.purchase_id,
        status: row.status,
        attempts: row.attempts,
        lastStatusCode: row.last_status_code,
        lastError: row.last_error,
        nextAttemptAt: row.status === 'pending' ? row.next_attempt_at : null,
        deliveredAt: row.delivered_at,
        createdAt: row.created_at,
        attemptLog: attempts
          .filter((attempt) => String(attempt.delivery_id) === String(row.id))
          .map((attempt) => ({
            attempt: attempt.attempt,
            statusCode: attempt.status_code,
            error: attempt.error,
            durationMs: attempt.duration_ms,
            attemptedAt: attempt.attempted_at,
          })),
      }));
    },

    /**
     * Sends an event again to every endpoint it was for that still exists: each delivery becomes
     * pending and due now, keeping the event's id. Null when the account has no such event (a
     * held one included: it has not happened yet as far as anyone outside knows).
     */
    async redeliver(accountId: number, eventId: string): Promise<number | null> {
      const event = await db<{ id: string; account_id: number; held: boolean }>('webhook_events')
        .where({ id: eventId, account_id: accountId, held: false })
        .first('id');
      if (!event) return null;
      return db('webhook_deliveries')
        .where({ event_id: eventId })
        .whereIn('endpoint_id', db('webhook_endpoints').select('id').whereNull('deleted_at'))
        .update({ status: 'pending', next_attempt_at: db.fn.now(), retry_started_at: db.fn.now(), locked_until: null });
    },
  };
}

export type WebhookDeliveriesRepository = ReturnType<typeof createWebhookDeliveriesRepository>;
