import { createHash, timingSafeEqual } from 'node:crypto';
import type { onRequestAsyncHookHandler } from 'fastify';
import { errorBody } from './error-body.js';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? '')?.[1];
}

/**
 * Whether a presented string is the admin token. Compared as SHA-256 digests with
 * `timingSafeEqual`: equal lengths, and the time taken tells nothing about where a guess differs
 * or how long the token is.
 */
export function adminTokenCheck(adminToken: string): (presented: string | undefined) => boolean {
  const expected = digest(adminToken);
  return (presented) => presented !== undefined && timingSafeEqual(digest(presented), expected);
}

/**
 * The hook in front of the operator routes (`/metrics` of the API and of the worker, the API's
 * `/admin/*`): a request without `Authorization: Bearer <adminToken>` is answered 401
 * UNAUTHENTICATED in the house error shape. The hook answers by itself rather than throw, so
 * apps without the API's error handler (the worker's) and routes with an error handler of their
 * own (Bull Board's) answer in that shape too.
 */
export function adminGuard(adminToken: string): onRequestAsyncHookHandler {
  const isAdminToken = adminTokenCheck(adminToken);
  return async (request, reply) => {
    if (!isAdminToken(bearerToken(request.headers.authorization))) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="payonce-admin"')
        .send(errorBody(401, 'UNAUTHENTICATED', 'This route needs Authorization: Bearer <ADMIN_TOKEN>'));
    }
  };
}
