import { levels } from 'pino';
import { z } from 'zod';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../errors.js';
import { EVENT_STREAM_TYPE, eventStream } from '../event-stream.js';
import {
  errorResponses,
  LowercaseUuid,
  PurchaseBody,
  PurchaseHeaders,
  PurchaseList,
  PurchaseListQuery,
  PurchaseView,
  toPurchaseView,
} from '../http-schemas.js';
import type { PurchaseRequest, PurchaseService } from '../purchase-service.js';
import type { PurchaseStatusStreams } from '../purchase-status-streams.js';

/** RFC 7240 caps: we wait at most this long, whatever the client asks for. */
export const MAX_WAIT_SECONDS = 30;

/** How `Prefer: wait` is bounded where the API runs (the defaults suit a server process). */
export interface PreferWaitOptions {
  /** The longest wait granted, in seconds, whatever the client asks. Default MAX_WAIT_SECONDS. */
  maxSeconds?: number;
  /**
   * For a host with a deadline of its own (Lambda behind API Gateway): when the request reached
   * the host, and by when it must be answered, both epoch ms. Default: it arrived when its
   * headers reached the API, and only the wait bounds it.
   */
  hostTiming?: (request: FastifyRequest) => { arrivedAt?: number | undefined; answerBy?: number | undefined };
}

/**
 * The `wait` preference from a `Prefer` header (RFC 7240), capped at `maxSeconds`; 0 when
 * absent or malformed (an unrecognised preference is ignored, as the RFC says).
 */
export function preferredWaitSeconds(prefer: string | undefined, maxSeconds = MAX_WAIT_SECONDS): number {
  if (!prefer) return 0;
  for (const preference of prefer.split(',')) {
    const [token = '', value = ''] = preference
      .split(';')[0]!
      .split('=')
      .map((part) => part.trim());
    if (token.toLowerCase() !== 'wait') continue;
    const unquoted = value.replace(/^"(.*)"$/, '$1');
    if (!/^\d{1,9}$/.test(unquoted)) return 0;
    return Math.min(Number(unquoted), maxSeconds);
  }
  return 0;
}

const purchaseLocation = (purchaseId: string) => `/payment/purchase/${purchaseId}`;

/**
 * Tags the rest of a request's log lines, "request completed" included, with its purchase.
 * A child logger costs a few microseconds, so none is made when no such line would be written:
 * `level` is the lowest level of the lines it is for.
 */
function logAbout(request: FastifyRequest, reply: FastifyReply, purchaseId: string, level: 'info' | 'warn'): void {
  // pino's level numbers; a logger without a known level (Fastify's `logger: false`) logs nothing.
  const current = levels.values[request.log.level];
  if (current === undefined || current > levels.values[level]!) return;
  request.log = request.log.child({ purchaseId });
  reply.log = request.log;
}

/**
 * An AbortSignal that fires when the client goes before its answer is sent. Fastify's own
 * `request.signal` and `onRequestAbort` listen to the request stream, which closes as soon as the
 * body has been read, so only the response tells a disconnect from a finished upload.
 */
function clientDeparture(reply: FastifyReply): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const response = reply.raw;
  const onClose = () => {
    if (!response.writableEnded) controller.abort();
  };
  if (response.destroyed) controller.abort();
  else response.once('close', onClose);
  return { signal: controller.signal, release: () => response.off('close', onClose) };
}

const Accepted = z.object({
  purchaseId: z.uuid(),
  status: z.literal('queued'),
  statusUrl: z.string(),
});

/** A purchase id in a path. */
const PurchaseParams = z.strictObject({ purchaseId: LowercaseUuid });

/** The name of every event of a purchase's events stream. */
const STATUS_EVENT = 'status';

/** How long a client refused an events stream (every place taken) should wait before trying again. */
const STREAMS_RETRY_AFTER_SECONDS = 5;

const notFound = (purchaseId: string) => new AppError('PURCHASE_NOT_FOUND', `Purchase ${purchaseId} not found`);

export interface PurchasesRoutesOptions {
  purchases: PurchaseService;
  /** The events streams (`GET /payment/purchase/:id/events`). */
  streams: PurchaseStatusStreams;
  wait?: PreferWaitOptions | undefined;
}

export const purchasesRoutes: FastifyPluginAsyncZod<PurchasesRoutesOptions> = async (
  app,
  { purchases, streams, wait: waitOptions = {} },
) => {
  const { maxSeconds = MAX_WAIT_SECONDS, hostTiming } = waitOptions;
  // When each request's headers arrived: a wait counts from there, not from the end of a slow
  // upload or of the enqueue.
  const arrivals = new WeakMap<FastifyRequest, number>();

  app.post('/payment/purchase', {
    onRequest: (request, _reply, done) => {
      arrivals.set(request, Date.now());
      done();
    },
    schema: {
      body: PurchaseBody,
      headers: PurchaseHeaders,
      response: {
        200: PurchaseView,
        202: Accepted,
        /** Duplicate: no body; `Location` points at the original purchase. */
        204: z.undefined(),
        ...errorResponses(400, 401, 413, 415, 422, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const waitSeconds = preferredWaitSeconds(request.headers.prefer, maxSeconds);
      let wait: PurchaseRequest['wait'];
      const departure = waitSeconds > 0 ? clientDeparture(reply) : undefined;
      if (departure) {
        const host = hostTiming?.(request) ?? {};
        const arrivedAt = host.arrivedAt ?? arrivals.get(request) ?? Date.now();
        const deadline = Math.min(arrivedAt + waitSeconds * 1000, host.answerBy ?? Infinity);
        wait = { deadline, signal: departure.signal };
      }
      const result = await purchases
        .submitPurchase({
          accountId: request.accountId,
          userId: request.body.userId,
          productId: request.body.productId,
          idempotencyKey: request.headers['idempotency-key'],
          wait,
        })
        .finally(() => departure?.release());
      // Only "request completed" (info) follows: the purchase's own failures were logged inside.
      logAbout(request, reply, result.kind === 'finished' ? result.purchase.purchaseId : result.purchaseId, 'info');
      switch (result.kind) {
        case 'duplicate':
          return reply.code(204).header('location', purchaseLocation(result.purchaseId)).send(undefined);
        case 'finished':
          return reply
            .code(200)
            .header('location', purchaseLocation(result.purchase.purchaseId))
            .header('preference-applied', `wait=${waitSeconds}`)
            .send(toPurchaseView(result.purchase));
        case 'accepted': {
          const statusUrl = purchaseLocation(result.purchaseId);
          return reply
            .code(202)
            .header('location', statusUrl)
            .send({ purchaseId: result.purchaseId, status: 'queued' as const, statusUrl });
        }
      }
    },
  });

  app.get('/payment/purchase', {
    schema: {
      querystring: PurchaseListQuery,
      response: { 200: PurchaseList, ...errorResponses(400, 401, 429, 503) },
    },
    handler: async (request) => {
      const { userId, status, limit, starting_after: startingAfter } = request.query;
      const page = await purchases.listPurchases({
        accountId: request.accountId,
        userId,
        status,
        limit,
        startingAfter,
      });
      return {
        data: page.purchases.map(toPurchaseView),
        has_more: page.hasMore,
        next_starting_after: page.nextStartingAfter,
      };
    },
  });

  app.get('/payment/purchase/:purchaseId', {
    schema: {
      params: PurchaseParams,
      response: { 200: PurchaseView, ...errorResponses(400, 401, 404, 429, 503) },
    },
    handler: async (request, reply) => {
      // A dependency failure (warn) follows too.
      logAbout(request, reply, request.params.purchaseId, 'warn');
      // Another account's purchase is as unknown as one that never existed.
      const purchase = await purchases.getPurchase(request.params.purchaseId, request.accountId);
      if (!purchase) throw notFound(request.params.purchaseId);
      return toPurchaseView(purchase);
    },
  });

  app.get('/payment/purchase/:purchaseId/events', {
    schema: {
      params: PurchaseParams,
      // Written by the stream itself, not serialised: the OpenAPI document describes the events.
      response: { 200: z.string().describe(EVENT_STREAM_TYPE), ...errorResponses(400, 401, 404, 429, 503) },
    },
    handler: async (request, reply) => {
      const { purchaseId } = request.params;
      // "request completed" (info) follows when the stream ends.
      logAbout(request, reply, purchaseId, 'info');
      const read = () => purchases.getPurchase(purchaseId, request.accountId);
      // Read before anything is written: an unknown purchase, or a dependency down, is answered as usual.
      const first = await read();
      if (!first) throw notFound(purchaseId);
      const events = eventStream(reply);
      const stream = streams.open(first, read, {
        send: (purchase) => events.event(STATUS_EVENT, JSON.stringify(toPurchaseView(purchase))),
        keepAlive: () => events.comment('keep-alive'),
        end: () => events.end(),
      });
      if (!stream) {
        throw new AppError('TOO_MANY_STREAMS', 'Too many events streams are open; retry later, or poll the purchase', {
          headers: { 'retry-after': String(STREAMS_RETRY_AFTER_SECONDS) },
        });
      }
      reply.raw.once('close', () => stream.stop());
      return reply;
    },
  });
};
