/**
 * The names the Postgres store backend uses beyond its tables (see the migrations): the
 * LISTEN/NOTIFY channel of purchase announcements and BullMQ's schema. One database is one
 * deployment, so they need no prefix.
 */
export const PURCHASE_EVENTS_CHANNEL = 'payonce_purchase_events';

/** The schema BullMQ's PostgreSQL backend keeps its queues in (its default). */
export const BULLMQ_SCHEMA = 'bullmq';
