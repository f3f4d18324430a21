import { randomUUID } from 'node:crypto';
import type { RawRequestDefaultExpression } from 'fastify';

/** The request header a client may choose its request id with, and the response header that echoes it. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client's request id may be: it goes into every log line about the request, so no spaces, quotes or controls. */
const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify's `genReqId`: the client's `X-Request-Id` when it is well formed, a fresh UUID otherwise
 * (a malformed id never reaches the logs). Use with `requestIdHeader: false`: Fastify 5 takes a
 * set `requestIdHeader` as it comes and calls `genReqId` only when the header is missing.
 */
export function requestId(request: RawRequestDefaultExpression): string {
  // Repeated headers arrive joined by ", ", which the pattern refuses.
  const presented = request.headers[REQUEST_ID_HEADER];
  return typeof presented === 'string' && WELL_FORMED.test(presented) ? presented : randomUUID();
}
