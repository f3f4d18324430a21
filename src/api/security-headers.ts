import type { IncomingMessage, ServerResponse } from 'node:http';
import fastifyHelmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';

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
} satisfies FastifyHelmetOptions;

const applyHelmet = helmet(HELMET_OPTIONS);

/** Sets the same headers on an answer the hooks never see (Fastify's `frameworkErrors`). */
export function setSecurityHeaders(request: IncomingMessage, response: ServerResponse): void {
  applyHelmet(request, response, () => {});
}

/**
 * Security headers on every answer (@fastify/helmet). Register before any hook that may answer
 * early (load shedding), so those answers carry them too.
 */
export async function registerSecurityHeaders(app: FastifyInstance): Promise<void> {
  await app.register(fastifyHelmet, HELMET_OPTIONS);
}
