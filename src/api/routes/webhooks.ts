import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { checkWebhookUrl } from '../../shared/webhooks/address-guard.js';
import { DELIVERY_STATUSES, type WebhookDeliveriesRepository } from '../../shared/webhooks/deliveries-repository.js';
import type { WebhookEndpoint, WebhookEndpointsRepository } from '../../shared/webhooks/endpoints-repository.js';
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES } from '../../shared/webhooks/outbox.js';
import { AppError } from '../errors.js';
import { errorResponses, LowercaseUuid } from '../http-schemas.js';

export interface WebhooksRoutesOptions {
  endpoints: WebhookEndpointsRepository;
  deliveries: Pick<WebhookDeliveriesRepository, 'listDeliveries' | 'redeliver'>;
  /** WEBHOOK_ALLOWED_HOSTS: hosts and addresses an endpoint may use although they are not public. */
  allowedHosts: readonly string[];
}

const EndpointView = z.object({
  id: z.uuid(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  createdAt: z.iso.datetime(),
});
const toEndpointView = (endpoint: WebhookEndpoint) => ({
  ...endpoint,
  createdAt: endpoint.createdAt.toISOString(),
});

const EndpointParams = z.strictObject({ id: LowercaseUuid });
const iso = (date: Date | null) => (date === null ? null : date.toISOString());

const DeliveryView = z.object({
  id: z.string(),
  eventId: z.string(),
  eventType: z.string(),
  purchaseId: z.uuid(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.iso.datetime().nullable(),
  deliveredAt: z.iso.datetime().nullable(),
  createdAt: z.iso.datetime(),
  attemptLog: z.array(
    z.object({
      attempt: z.number().int(),
      statusCode: z.number().int().nullable(),
      error: z.string().nullable(),
      durationMs: z.number().int(),
      attemptedAt: z.iso.datetime(),
    }),
  ),
});

const endpointNotFound = (id: string) => new AppError('WEBHOOK_ENDPOINT_NOT_FOUND', `Webhook endpoint ${id} not found`);

/**
 * An account's webhook endpoints, their deliveries, and redelivery of an event. Signing secrets
 * are shown once: in the answer that creates or rotates them.
 */
export const webhooksRoutes: FastifyPluginAsyncZod<WebhooksRoutesOptions> = async (app, options) => {
  const { endpoints, deliveries, allowedHosts } = options;

  app.post('/webhook-endpoints', {
    schema: {
      body: z.strictObject({
        url: z.string().max(2048),
        events: z
          .array(z.enum(WEBHOOK_EVENT_TYPES))
          .min(1)
          .refine((events) => new Set(events).size === events.length, 'each event at most once')
          .optional(),
      }),
      response: {
        201: EndpointView.extend({ secret: z.string() }),
        ...errorResponses(400, 401, 413, 415, 422, 429, 503),
      },
    },
    handler: async (request, reply) => {
      // Checked without connecting or resolving: the dispatcher checks the resolved address again.
      const refusal = checkWebhookUrl(request.body.url, allowedHosts);
      if (refusal) throw new AppError('WEBHOOK_URL_NOT_ALLOWED', `This URL cannot receive webhooks: ${refusal}`);
      const created = await endpoints.createEndpoint(request.accountId, {
        url: request.body.url,
        events: request.body.events ?? DEFAULT_WEBHOOK_EVENTS,
      });
      return reply.code(201).send({ ...toEndpointView(created), secret: created.secret });
    },
  });

  app.get('/webhook-endpoints', {
    schema: { response: { 200: z.array(EndpointView), ...errorResponses(401, 429, 503) } },
    handler: async (request) => (await endpoints.listEndpoints(request.accountId)).map(toEndpointView),
  });

  app.delete('/webhook-endpoints/:id', {
    schema: { params: EndpointParams, response: { 204: z.undefined(), ...errorResponses(400, 401, 404, 429, 503) } },
    handler: async (request, reply) => {
      if (!(await endpoints.deleteEndpoint(request.accountId, request.params.id))) {
        throw endpointNotFound(request.params.id);
      }
      return reply.code(204).send(undefined);
    },
  });

  app.post('/webhook-endpoints/:id/rotate-secret', {
    schema: {
      params: EndpointParams,
      response: {
        200: z.object({ id: z.uuid(), secret: z.string(), previousSecretExpiresAt: z.iso.datetime() }),
        ...errorResponses(400, 401, 404, 429, 503),
      },
    },
    handler: async (request) => {
      const rotated = await endpoints.rotateSecret(request.accountId, request.params.id);
      if (!rotated) throw endpointNotFound(request.params.id);
      return { ...rotated, previousSecretExpiresAt: rotated.previousSecretExpiresAt.toISOString() };
    },
  });

  app.get('/webhook-endpoints/:id/deliveries', {
    schema: {
      params: EndpointParams,
      querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20) }),
      response: { 200: z.array(DeliveryView), ...errorResponses(400, 401, 404, 429, 503) },
    },
    handler: async (request) => {
      if (!(await endpoints.ownsEndpoint(request.accountId, request.params.id))) {
        throw endpointNotFound(request.params.id);
      }
      const found = await deliveries.listDeliveries(request.params.id, request.query.limit);
      return found.map((delivery) => ({
        ...delivery,
        nextAttemptAt: iso(delivery.nextAttemptAt),
        deliveredAt: iso(delivery.deliveredAt),
        createdAt: delivery.createdAt.toISOString(),
        attemptLog: delivery.attemptLog.map((attempt) => ({
          ...attempt,
          attemptedAt: attempt.attemptedAt.toISOString(),
        })),
      }));
    },
  });

  app.post('/events/:id/redeliver', {
    schema: {
      params: z.strictObject({ id: z.string().regex(/^msg_[0-9a-f]{32}$/, 'an event id, msg_…') }),
      response: {
        202: z.object({ eventId: z.string(), deliveries: z.number().int() }),
        ...errorResponses(400, 401, 404, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const scheduled = await deliveries.redeliver(request.accountId, request.params.id);
      if (scheduled === null) throw new AppError('EVENT_NOT_FOUND', `Event ${request.params.id} not found`);
      return reply.code(202).send({ eventId: request.params.id, deliveries: scheduled });
    },
  });
};
