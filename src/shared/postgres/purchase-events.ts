import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { PurchaseEventSource } from '../purchase/purchase-states.js';
import { PURCHASE_EVENTS_CHANNEL } from './names.js';

export interface PostgresPurchaseEventsOptions {
  databaseUrl: string;
  logger: Logger;
  /** The channel to LISTEN on. Default PURCHASE_EVENTS_CHANNEL. */
  channel?: string;
}

/** Reconnect after 50 ms, doubling up to 2 s; never give up (as the Redis connections do). */
const reconnectDelayMs = (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000);

/**
 * Announcements by Postgres LISTEN/NOTIFY, on a connection of its own (a LISTEN lives on one
 * session, so it cannot come from a pool). When that connection drops, it connects again and
 * LISTENs again, waiting as long as it takes; what was notified meanwhile is gone, so listeners
 * hear of every resubscription.
 */
export function createPostgresPurchaseEvents(options: PostgresPurchaseEventsOptions): PurchaseEventSource {
  const { databaseUrl, logger } = options;
  const channel = options.channel ?? PURCHASE_EVENTS_CHANNEL;
  const messageListeners: Array<(payload: string) => void> = [];
  const resubscribedListeners: Array<() => void> = [];
  let client: pg.Client | undefined;
  let started: Promise<void> | undefined;
  let closed = false;
  let reconnecting = false;

  /** Connects and LISTENs, trying until it succeeds or the source is closed. */
  async function listen(): Promise<void> {
    for (let attempt = 0; !closed; attempt++) {
      const candidate = new pg.Client({
        connectionString: databaseUrl,
        application_name: 'payonce-events',
        connectionTimeoutMillis: 3_000,
        // A silently dropped connection is noticed (an 'error'), and then rebuilt.
        keepAlive: true,
      });
      candidate.on('notification', (message) => {
        if (message.channel === channel && message.payload !== undefined) {
          for (const listener of messageListeners) listener(message.payload);
        }
      });
      const lost = (error?: Error) => {
        if (client !== candidate) return;
        logger.warn({ err: error }, 'postgres events connection lost; listening again');
        client = undefined;
        void candidate.end().catch(() => {});
        void relisten();
      };
      candidate.on('error', lost);
      candidate.on('end', () => lost());
      try {
        await candidate.connect();
        await candidate.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      } catch (error) {
        await candidate.end().catch(() => {});
        if (attempt === 0) logger.warn({ err: error }, 'could not listen for purchase events yet; retrying');
        await sleep(reconnectDelayMs(attempt));
        continue;
      }
      if (closed) {
        await candidate.end().catch(() => {});
        return;
      }
      client = candidate;
      return;
    }
  }

  async function relisten(): Promise<void> {
    if (reconnecting || closed) return;
    reconnecting = true;
    try {
      await listen();
    } finally {
      reconnecting = false;
    }
    if (!closed && client) for (const listener of resubscribedListeners) listener();
  }

  return {
    start() {
      started ??= listen();
      return started;
    },
    onMessage: (listener) => void messageListeners.push(listener),
    onResubscribed: (listener) => void resubscribedListeners.push(listener),
    async close() {
      closed = true;
      const current = client;
      client = undefined;
      await current?.end().catch(() => {});
    },
  };
}
