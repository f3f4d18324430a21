import { expect } from 'vitest';
import { request, type HttpResult } from './purchase-client.js';
import { eventually } from './services.js';

/** A webhook endpoint as `POST /webhook-endpoints` answers it (the only time its secret is shown). */
export interface RegisteredEndpoint {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  secret: string;
}

/** One delivery as `GET /webhook-endpoints/:id/deliveries` shows it. */
export interface DeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  purchaseId: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  createdAt: string;
  attemptLog: Array<{
    attempt: number;
    statusCode: number | null;
    error: string | null;
    durationMs: number;
    attemptedAt: string;
  }>;
}

/** For `deliveriesReach`: the deliveries once there are `count` and every one is delivered. */
export const allDelivered = (count: number) => (deliveries: DeliveryView[]) =>
  deliveries.length === count && deliveries.every((delivery) => delivery.status === 'delivered')
    ? deliveries
    : undefined;

/** The webhook routes of one running API, as a client calls them (with the stack's API key). */
export function createWebhookClient(baseUrl: string) {
  const post = (path: string, body?: unknown) =>
    request(`${baseUrl}${path}`, {
      method: 'POST',
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });

  async function deliveries(endpointId: string): Promise<DeliveryView[]> {
    const result = await request(`${baseUrl}/webhook-endpoints/${endpointId}/deliveries?limit=100`);
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    return result.body as unknown as DeliveryView[];
  }

  return {
    /** POST /webhook-endpoints, whatever it answers. */
    register(body: { url: string; events?: string[] }): Promise<HttpResult> {
      return post('/webhook-endpoints', body);
    },

    /** Registers an endpoint and expects the 201. */
    async registered(url: string, events?: string[]): Promise<RegisteredEndpoint> {
      const result = await post('/webhook-endpoints', events === undefined ? { url } : { url, events });
      expect(result.status, JSON.stringify(result.body)).toBe(201);
      return result.body as unknown as RegisteredEndpoint;
    },

    async list(): Promise<RegisteredEndpoint[]> {
      const result = await request(`${baseUrl}/webhook-endpoints`);
      expect(result.status).toBe(200);
      return result.body as unknown as RegisteredEndpoint[];
    },

    remove(endpointId: string): Promise<HttpResult> {
      return request(`${baseUrl}/webhook-endpoints/${endpointId}`, { method: 'DELETE' });
    },

    rotateSecret(endpointId: string): Promise<HttpResult> {
      return post(`/webhook-endpoints/${endpointId}/rotate-secret`);
    },

    /** The endpoint's deliveries (up to 100, newest first). */
    deliveries,

    /** Waits until the endpoint's deliveries satisfy `probe` (which returns what to give back). */
    deliveriesReach<T>(
      endpointId: string,
      probe: (deliveries: DeliveryView[]) => T | undefined,
      what: string,
      timeoutMs = 15_000,
    ): Promise<T> {
      return eventually(async () => probe(await deliveries(endpointId)), { timeoutMs, intervalMs: 100, what });
    },

    redeliver(eventId: string): Promise<HttpResult> {
      return post(`/events/${eventId}/redeliver`);
    },
  };
}

export type WebhookClient = ReturnType<typeof createWebhookClient>;

/** For the API and the worker: the test's receivers on 127.0.0.1 may receive webhooks, nothing else that is not public. */
export const LOOPBACK_RECEIVERS = { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } as const;

/** For the worker: a dispatcher that looks for due deliveries every 100 ms and retries after 200 ms, doubling. */
export const FAST_DISPATCH = { WEBHOOK_DISPATCH_INTERVAL_MS: '100', WEBHOOK_RETRY_BASE_MS: '200' } as const;
