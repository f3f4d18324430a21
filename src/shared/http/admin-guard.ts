import { createHash, timingSafeEqual } from 'node:crypto';
import type { onRequestAsyncHookHandler } from 'fastify';
import { errorBody } from './error-body.js';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? '')?.[1];
}

/**
 * The hook in front of the operator routes (`/metrics` of the API and of the worker): a request
 * without `Authorization: Bearer <adminToken>` is answered 401 UNAUTHENTICATED, in the house error
 * shape, by the hook itself (the worker's app has no AppError handler). The token is compared as
 * SHA-256 digests with `timingSafeEqual`: equal lengths, and the time taken tells nothing about
 * where a guess differs or how long the token is.
 */
export function adminGuard(adminToken: string): onRequestAsyncHookHandler {
  const expected = digest(adminToken);
  return async (request, reply) => {
    const presented = bearerToken(request.headers.authorization);
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return;
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="payonce-admin"')
      .send(errorBody(401, 'UNAUTHENTICATED', 'This route needs Authorization: Bearer <ADMIN_TOKEN>'));
  };
}
