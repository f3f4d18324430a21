import type { Db } from '../db.js';
import type { WebhookEventType } from './outbox.js';
import { newWebhookSecret, SECRET_ROTATION_GRACE_HOURS } from './signing.js';

export interface WebhookEndpoint {
  id: string;
  url: string;
  events: WebhookEventType[];
  createdAt: Date;
}

interface EndpointRow {
  id: string;
  account_id: number;
  url: string;
  events: WebhookEventType[];
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  deleted_at: Date | null;
}

const toEndpoint = (row: Pick<EndpointRow, 'id' | 'url' | 'events' | 'created_at'>): WebhookEndpoint => ({
  id: row.id,
  url: row.url,
  events: row.events,
  createdAt: row.created_at,
});

/** An account's webhook endpoints; every call is scoped to the account, and a removed endpoint is gone for it. */
export function createWebhookEndpointsRepository({ db }: { db: Db }) {
  const live = (accountId: number) =>
    db<EndpointRow>('webhook_endpoints').where({ account_id: accountId }).whereNull('deleted_at');

  return {
    /** Registers an endpoint; returns it with its signing secret, which nothing shows again. */
    async createEndpoint(
      accountId: number,
      input: { url: string; events: readonly WebhookEventType[] },
    ): Promise<WebhookEndpoint & { secret: string }> {
      const secret = newWebhookSecret();
      const [row] = await db<EndpointRow>('webhook_endpoints')
        .insert({ account_id: accountId, url: input.url, events: [...input.events], secret })
        .returning(['id', 'url', 'events', 'created_at']);
      return { ...toEndpoint(row!), secret };
    },

    async listEndpoints(accountId: number): Promise<WebhookEndpoint[]> {
      const rows = await live(accountId).orderBy('created_at').select('id', 'url', 'events', 'created_at');
      return rows.map(toEndpoint);
    },

    /** Removes an endpoint (its pending deliveries are not sent); false when the account has no such endpoint. */
    async deleteEndpoint(accountId: number, id: string): Promise<boolean> {
      return (await live(accountId).where({ id }).update({ deleted_at: db.fn.now() })) > 0;
    },

    /**
     * Gives an endpoint a new secret; the old one goes on signing beside it for
     * SECRET_ROTATION_GRACE_HOURS. Null when the account has no such endpoint.
     */
    async rotateSecret(
      accountId: number,
      id: string,
    ): Promise<{ id: string; secret: string; previousSecretExpiresAt: Date } | null> {
      const secret = newWebhookSecret();
      const [row] = await live(accountId)
        .where({ id })
        .update({
          previous_secret: db.ref('secret'),
          previous_secret_expires_at: db.raw(`now() + interval '${SECRET_ROTATION_GRACE_HOURS} hours'`),
          secret,
        } as never)
        .returning(['id', 'previous_secret_expires_at']);
      return row ? { id: row.id, secret, previousSecretExpiresAt: row.previous_secret_expires_at! } : null;
    },

    /** Whether the account has this endpoint (removed ones included: their delivery history stays). */
    async ownsEndpoint(accountId: number, id: string): Promise<boolean> {
      return (await db('webhook_endpoints').where({ id, account_id: accountId }).first('id')) !== undefined;
    },
  };
}

export type WebhookEndpointsRepository = ReturnType<typeof createWebhookEndpointsRepository>;
