import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { expect } from 'vitest';
import type { PurchaseView } from './purchase-client.js';
import { eventually } from './services.js';

/** One request a receiver got, as it arrived. */
export interface ReceivedWebhook {
  method: string;
  /** The request target: path and query. */
  path: string;
  /** Header names lower-cased, as Node gives them. */
  headers: Record<string, string>;
  /** The body byte for byte (as UTF-8 text): what a signature covers. */
  body: string;
  /** When the whole body had arrived (`Date.now()`). */
  receivedAt: number;
  /** The status it was answered with; null while unanswered, or when the sender went away first. */
  answered: number | null;
}

/** How a receiver answers the requests it gets from now on. */
export interface ReceiverAnswer {
  status: number;
  /** Extra response headers (a redirect's `location`). */
  headers?: Record<string, string>;
  /** Wait this long before answering. Default 0. */
  delayMs?: number;
}

export interface WebhookReceiver {
  /** `http://<host>:<port>` (no trailing slash); an endpoint URL is this plus a path. */
  origin: string;
  host: string;
  port: number;
  /** Every request so far, oldest first (while up; a request refused while down never arrives). */
  received(): readonly ReceivedWebhook[];
  /** Requests whose `webhook-id` is `eventId`, oldest first. */
  deliveriesOf(eventId: string): ReceivedWebhook[];
  /** Answers the requests that arrive from now on like this (default 200, at once). */
  answerWith(answer: ReceiverAnswer): void;
  /** Holds every answer, those under way included, until `release()`. */
  hold(): void;
  /** Answers every held request now (with the current answer), and stops holding. */
  release(): void;
  /** Requests still waiting for their answer, their sender still connected. */
  waiting(): readonly ReceivedWebhook[];
  /**
   * Closes the listener and every connection: connections to the port are refused (on Linux,
   * loopback answers with a reset) until `up()`.
   */
  down(): Promise<void>;
  /** Listens again on the same address and port. */
  up(): Promise<void>;
  /** Waits until `probe` returns something (polling what was received); returns that. */
  waitFor<T>(
    probe: (received: readonly ReceivedWebhook[]) => T | undefined,
    what: string,
    timeoutMs?: number,
  ): Promise<T>;
  /** Takes the receiver down for good (for afterAll); idempotent. */
  close(): Promise<void>;
}

/**
 * An HTTP server of the test's own that webhooks are sent to, on a loopback address (default
 * 127.0.0.1; Linux routes all of 127.0.0.0/8 to `lo`, so 127.0.0.2 works too) and a port the OS
 * picks. It records every request before answering, answers as told (a status, a delay, or held
 * until released), and can be taken down and brought up again on the same port.
 */
export async function startWebhookReceiver(host = '127.0.0.1'): Promise<WebhookReceiver> {
  if (!host.startsWith('127.')) throw new Error(`a webhook receiver listens on loopback only, not ${host}`);
  const received: ReceivedWebhook[] = [];
  let answer: Required<ReceiverAnswer> = { status: 200, headers: {}, delayMs: 0 };
  let held: { promise: Promise<void>; release: () => void } | undefined;
  const unanswered = new Map<ReceivedWebhook, ServerResponse>();
  const sockets = new Set<Socket>();

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const record: ReceivedWebhook = {
      method: request.method ?? '',
      path: request.url ?? '',
      headers: Object.fromEntries(
        Object.entries(request.headers).map(([name, value]) => [
          name,
          Array.isArray(value) ? value.join(', ') : value!,
        ]),
      ),
      body: Buffer.concat(chunks).toString('utf8'),
      receivedAt: Date.now(),
      answered: null,
    };
    received.push(record);
    unanswered.set(record, response);
    response.once('close', () => unanswered.delete(record));
    const { delayMs } = answer;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (held) await held.promise;
    // The sender went away (a killed worker, its timeout): nothing to answer.
    if (!unanswered.has(record) || response.destroyed) return;
    // The answer in force when it is given, so a release answers the held ones as told since.
    record.answered = answer.status;
    response.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers }).end('ok');
  }

  let server: Server | undefined;
  let port = 0;
  async function listen(): Promise<void> {
    const listening = createServer((request, response) => {
      handle(request, response).catch(() => response.destroy());
    });
    listening.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen({ host, port, exclusive: true }, () => resolve());
    });
    port = (listening.address() as AddressInfo).port;
    server = listening;
  }

  async function down(): Promise<void> {
    const closing = server;
    server = undefined;
    if (!closing) return;
    const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  }

  await listen();
  const origin = `http://${host}:${port}`;

  return {
    origin,
    host,
    port,
    received: () => received,
    deliveriesOf: (eventId) => received.filter((request) => request.headers['webhook-id'] === eventId),
    answerWith(next) {
      answer = { headers: {}, delayMs: 0, ...next };
    },
    hold() {
      if (held) return;
      let release!: () => void;
      const promise = new Promise<void>((resolve) => (release = resolve));
      held = { promise, release };
    },
    release() {
      held?.release();
      held = undefined;
    },
    waiting: () => [...unanswered.keys()],
    down,
    async up() {
      if (!server) await listen();
    },
    waitFor(probe, what, timeoutMs = 15_000) {
      return eventually(() => probe(received), { timeoutMs, intervalMs: 50, what: `${what} (at ${origin})` });
    },
    async close() {
      held?.release();
      held = undefined;
      await down();
    },
  };
}

/**
 * Verifies a request's Standard Webhooks signature with `secret` as a receiver would
 * (`standardwebhooks`: `webhook-id`, `webhook-timestamp` within five minutes, one matching
 * `v1,` signature of `id.timestamp.body`) and returns the parsed body; throws
 * `WebhookVerificationError` when it does not verify.
 */
export function verifyWebhook(secret: string, request: Pick<ReceivedWebhook, 'headers' | 'body'>): unknown {
  return new Webhook(secret).verify(request.body, request.headers);
}

/** The distinct `webhook-id`s of `requests`, in the order first seen. */
export function eventIdsOf(requests: readonly ReceivedWebhook[]): string[] {
  return [...new Set(requests.map((request) => request.headers['webhook-id']!))];
}

/** A webhook's body as payonce sends it: Standard Webhooks' `{type, timestamp, data}`, data the purchase. */
export interface WebhookEvent {
  /** Its `webhook-id`. */
  id: string;
  type: string;
  timestamp: string;
  data: PurchaseView;
}

/**
 * The events in `requests`, by `webhook-id`, after checking what every receiver may rely on:
 * each request is a POST whose signature verifies with `secret` and whose body is
 * `{type, timestamp, data}`, and every request of one `webhook-id` carries the same body, byte
 * for byte.
 */
export function verifiedEvents(requests: readonly ReceivedWebhook[], secret: string): Map<string, WebhookEvent> {
  const events = new Map<string, WebhookEvent>();
  const bodies = new Map<string, string>();
  for (const request of requests) {
    const id = request.headers['webhook-id']!;
    expect(request.method).toBe('POST');
    expect(request.headers['content-type']).toBe('application/json');
    expect(id).toMatch(/^msg_[0-9a-f]{32}$/);
    const payload = verifyWebhook(secret, request) as Omit<WebhookEvent, 'id'>;
    expect(Object.keys(payload).sort()).toEqual(['data', 'timestamp', 'type']);
    expect(new Date(payload.timestamp).toISOString()).toBe(payload.timestamp);
    const first = bodies.get(id);
    if (first === undefined) bodies.set(id, request.body);
    else expect(request.body, `every delivery of ${id} carries the same body`).toBe(first);
    events.set(id, { id, ...payload });
  }
  return events;
}
