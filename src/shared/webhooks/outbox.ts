/**
 * The transactional outbox of webhook events, as SQL for the statements that write outcomes.
 * `payments-repository.ts` (an outcome) and `purchases-repository.ts` (an acceptance) append
 * these common table expressions to their own insert, so an event and its deliveries are written
 * by the very statement that writes the row they announce: one cannot exist without the other.
 * An event is written only when the purchase's account has an endpoint subscribed to its type
 * at that moment, with one pending delivery per such endpoint; a repeated write of the same
 * outcome writes nothing (`on conflict do nothing` on the row, and on the event).
 */

/** The event types an endpoint may subscribe to. */
export const WEBHOOK_EVENT_TYPES = ['purchase.accepted', 'purchase.succeeded', 'purchase.failed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What an endpoint receives when it names no events. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventType[] = ['purchase.succeeded', 'purchase.failed'];

/** An ISO 8601 UTC timestamp with milliseconds, as JavaScript's `toISOString` writes it. */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The CTEs that write the events and deliveries of the rows in `rows` (a CTE of purchases with
 * `event_type`, `id`, `account_id`, `user_id`, `product_id`, `amount`, `status`,
 * `failure_reason`, `accepted_at`, `updated_at`): the event's body is the purchase as
 * `GET /payment/purchase/:id` shows it, under Standard Webhooks' `{type, timestamp, data}`.
 * `outbox_events` returns each event's `purchase_id`. With `held`, the events are written held:
 * nothing sends them until `releaseHeldEventsCte` lets them go, or `dropHeldEventsCtes` deletes
 * them with a purchase that was never queued.
 */
export function outboxCtes(rows: string, { held = false }: { held?: boolean } = {}): string {
  return `
  outbox_events as (
    insert into webhook_events (id, account_id, type, purchase_id, payload, held)
    select 'msg_' || replace(gen_random_uuid()::text, '-', ''), r.account_id, r.event_type, r.id,
           json_build_object(
             'type', r.event_type,
             'timestamp', ${iso('now()')},
             'data', json_build_object(
               'purchaseId', r.id, 'userId', r.user_id, 'productId', r.product_id, 'status', r.status,
               'amount', r.amount, 'failureReason', r.failure_reason,
               'createdAt', ${iso('r.accepted_at')}, 'updatedAt', ${iso('r.updated_at')}))::text,
           ${held ? 'true' : 'false'}
    from ${rows} r
    where r.account_id is not null and exists (
      select 1 from webhook_endpoints e
      where e.account_id = r.account_id and e.deleted_at is null and r.event_type = any(e.events))
    on conflict (purchase_id, type) do nothing
    returning id, account_id, type, purchase_id
  ),
  outbox_deliveries as (
    insert into webhook_deliveries (event_id, endpoint_id)
    select ev.id, e.id
    from outbox_events ev
    join webhook_endpoints e on e.account_id = ev.account_id and e.deleted_at is null and ev.type = any(e.events)
    returning 1
  )`;
}

/**
 * A CTE (`released_events`) that releases the held events (`purchase.accepted`) of the purchases
 * whose ids `ids` (a CTE with an `id` column) selects: an outcome proves its purchase was queued,
 * so the outcome's statement lets its acceptance go too, whether or not the API did; the API's
 * own release (the purchase is queued) uses it as well.
 */
export const releaseHeldEventsCte = (ids: string): string => `
  released_events as (
    update webhook_events set held = false
    where held and purchase_id in (select id from ${ids})
    returning 1
  )`;

/**
 * The CTEs that delete the held events of the purchases whose ids `ids` (a CTE with an `id`
 * column) selects, with their deliveries, in one statement (so the deliveries' foreign key is
 * checked once both are gone): a purchase dropped before it was ever queued takes its unannounced
 * `purchase.accepted` with it, so no endpoint ever hears of it. Released events stay.
 */
export const dropHeldEventsCtes = (ids: string): string => `
  held_events as (
    select id from webhook_events where held and purchase_id in (select id from ${ids})
  ),
  dropped_deliveries as (
    delete from webhook_deliveries where event_id in (select id from held_events) returning 1
  ),
  dropped_events as (
    delete from webhook_events where id in (select id from held_events) returning 1
  )`;
