import { eventually } from './services.js';

/** An HTTP answer as a client sees it. `body` is null when there was none (204). */
export interface HttpResult {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | null;
  /** From sending the request to having read the whole body. */
  elapsedMs: number;
}

export type PurchaseStatus = 'queued' | 'processing' | 'succeeded' | 'failed';

/** GET /payment/purchase/:id as the API documents it. */
export interface PurchaseView {
  purchaseId: string;
  userId: number;
  productId: number;
  status: PurchaseStatus;
  amount: number;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface PurchaseHeaders {
  idempotencyKey?: string;
  prefer?: string;
}

/** The API key to send to each API a test started (by its base URL), so every client is authenticated. */
const apiKeys = new Map<string, string>();

/**
 * Makes every purchase client of `baseUrl` send `Authorization: Bearer <apiKey>` (the stacks call
 * it for the APIs they start, with their database's account key).
 */
export function useApiKey(baseUrl: string, apiKey: string): void {
  apiKeys.set(baseUrl, apiKey);
}

/** The `Authorization` header for `baseUrl`'s API key, if a stack gave it one. */
export function authorization(baseUrl: string): Record<string, string> {
  const apiKey = apiKeys.get(baseUrl);
  return apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
}

/** A request to an API a stack started, with its API key; the JSON answer parsed. */
export async function request(url: string, init: RequestInit = {}): Promise<HttpResult> {
  const started = performance.now();
  const base = new URL(url).origin;
  const headers = { ...authorization(base), ...(init.headers as Record<string, string> | undefined) };
  const response = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(40_000) });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>),
    elapsedMs: performance.now() - started,
  };
}

/** The purchase id at the end of a `Location` / `statusUrl` (`/payment/purchase/<id>`). */
export function purchaseIdIn(location: string | null | undefined): string {
  const match = /^\/payment\/purchase\/([0-9a-f-]{36})$/.exec(location ?? '');
  if (!match) throw new Error(`not a purchase location: ${String(location)}`);
  return match[1]!;
}

/** Talks to one running API the way a client would. */
export function createPurchaseClient(baseUrl: string) {
  async function getPurchase(purchaseId: string): Promise<HttpResult> {
    return request(`${baseUrl}/payment/purchase/${purchaseId}`);
  }

  return {
    /** POST /payment/purchase. */
    purchase(body: { userId: number; productId: number }, headers: PurchaseHeaders = {}): Promise<HttpResult> {
      return request(`${baseUrl}/payment/purchase`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(headers.idempotencyKey === undefined ? {} : { 'idempotency-key': headers.idempotencyKey }),
          ...(headers.prefer === undefined ? {} : { prefer: headers.prefer }),
        },
        body: JSON.stringify(body),
      });
    },

    getPurchase,

    ready(): Promise<HttpResult> {
      return request(`${baseUrl}/health/ready`);
    },

    /** Polls the purchase until its status is one of `statuses`; returns the view then. */
    async purchaseReaches(
      purchaseId: string,
      statuses: readonly PurchaseStatus[],
      timeoutMs = 15_000,
    ): Promise<PurchaseView> {
      return eventually(
        async () => {
          const { status, body } = await getPurchase(purchaseId);
          const view = body as unknown as PurchaseView;
          if (status === 200 && statuses.includes(view.status)) return view;
          // Thrown rather than returned so a timeout reports what was last seen.
          throw new Error(`last answer: ${status} ${JSON.stringify(body)}`);
        },
        { timeoutMs, what: `purchase ${purchaseId} to reach ${statuses.join(' or ')}` },
      );
    },
  };
}

export type PurchaseClient = ReturnType<typeof createPurchaseClient>;

/** Counts of each HTTP status among `results`, e.g. `{ 202: 1, 204: 49 }`. */
export function statusCounts(results: readonly HttpResult[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of results) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** An events stream (`GET /payment/purchase/:id/events`) as a client reads it. */
export interface StatusStream {
  status: number;
  headers: Headers;
  /** The error body of an answer other than 200; null for a stream. */
  body: Record<string, unknown> | null;
  /** Every `status` event received so far, in order. */
  events: PurchaseView[];
  /** Resolves with the ms from opening once the server ends the stream; rejects if it has not within the timeout. */
  ended: Promise<number>;
  /** Leaves, as a client that goes away. */
  close(): void;
}

/**
 * Opens a purchase's events stream on `baseUrl` (with the API key its stack gave it) and reads it
 * in the background, as a browser's fetch and stream reader would. The stream is abandoned, and
 * `ended` rejects, after `timeoutMs`.
 */
export async function openStatusStream(baseUrl: string, purchaseId: string, timeoutMs = 30_000): Promise<StatusStream> {
  const opened = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`the stream did not end within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const response = await fetch(`${baseUrl}/payment/purchase/${purchaseId}/events`, {
    headers: authorization(baseUrl),
    signal: controller.signal,
  });
  const events: PurchaseView[] = [];
  if (response.status !== 200) {
    clearTimeout(timer);
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>),
      events,
      ended: Promise.resolve(performance.now() - opened),
      close: () => {},
    };
  }
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of response.body!) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = /^event: status\ndata: (.*)$/.exec(block);
          if (data) events.push(JSON.parse(data[1]!) as PurchaseView);
        }
      }
      return performance.now() - opened;
    } finally {
      clearTimeout(timer);
    }
  })();
  // Read by the test, or not at all: never an unhandled rejection.
  ended.catch(() => {});
  return {
    status: 200,
    headers: response.headers,
    body: null,
    events,
    ended,
    close: () => controller.abort(new Error('closed by the client')),
  };
}
