import { createHash, timingSafeEqual } from 'node:crypto';
import type { onRequestAsyncHookHandler } from 'fastify';
import { errorBody } from './error-body.js';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? '');
  return match?.[1];
}

/** Whether `presented` is `expected`, in time that does not depend on where they differ. */
export function tokensMatch(presented: string, expected: string): boolean {
  // Digests first: equal lengths for timingSafeEqual, and the length of the secret does not leak.
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * The hook in front of every operator route (`/metrics`, `/admin/*`) of the API and the worker.
 * With no ADMIN_TOKEN configured the routes do not exist: 404 ROUTE_NOT_FOUND, as for any unknown
 * route. With one, a request without it is answered 401 UNAUTHENTICATED.
 */
export function adminGuard(adminToken: string | undefined): onRequestAsyncHookHandler {
  return async (request, reply) => {
    if (adminToken === undefined) {
      return reply
        .code(404)
        .send(errorBody(404, 'ROUTE_NOT_FOUND', `Route ${request.method} ${request.url} not found`));
    }
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !tokensMatch(presented, adminToken)) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="payonce-admin"')
        .send(errorBody(401, 'UNAUTHENTICATED', 'This route needs Authorization: Bearer <ADMIN_TOKEN>'));
    }
  };
}
