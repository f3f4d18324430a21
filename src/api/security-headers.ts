import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * Helmet's defaults (a same-origin Content-Security-Policy, `nosniff`, HSTS, no framing by other
 * sites, no referrer, …) but one: `upgrade-insecure-requests`. The pages name their assets by
 * relative URL, so over HTTPS it changes nothing, while a browser that reaches a plain-HTTP API by
 * any name but loopback (a VM, compose on another host) would fetch `/docs`' scripts over HTTPS
 * and get none. HSTS keeps browsers on HTTPS where it exists. Swagger UI (`/docs`) and the queue
 * dashboard (`/admin/queues`) load only scripts of their own, so the default policy suits them.
 */
const HELMET_OPTIONS = {
  contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
} satisfies HelmetOptions;

const applyHelmet = helmet(HELMET_OPTIONS);

/** Sets the security headers on `response`, as the hook does on every answer it sees. */
export function setSecurityHeaders(request: IncomingMessage, response: ServerResponse): void {
  applyHelmet(request, response, () => {});
}

/**
 * Security headers on every answer: helmet's middleware, built once, run by an onRequest hook.
 * Not @fastify/helmet: its 13.2 builds helmet's middleware anew for every request (it parses the
 * Content-Security-Policy again each time), which a profile of the duplicate path put at a tenth
 * of the API's CPU; the headers are the same. Register before any hook that may answer early
 * (load shedding), so those answers carry them too.
 */
export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    applyHelmet(request.raw, reply.raw, (error) => done(error as Error | undefined));
  });
}
