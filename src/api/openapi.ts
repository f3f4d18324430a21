import fastifySwagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import packageJson from '../../package.json' with { type: 'json' };

/** Where the OpenAPI document is served. */
const OPENAPI_PATH = '/openapi.json';

/** Where the interactive reference (Swagger UI) is served. */
const DOCS_PREFIX = '/docs';

type JsonSchema = Record<string, unknown>;
type Transform = NonNullable<FastifyDynamicSwaggerOptions['transform']>;

const LOCATION = { type: 'string', description: 'The purchase: `GET` it for its status.' };
const RETRY_AFTER = { type: 'string', description: 'Seconds to wait before retrying; retrying is safe.' };
/** The rate limiter's headers (IETF draft names), on every answer of a client route while it is on. */
const RATE_LIMIT_HEADERS: Record<string, JsonSchema> = {
  'RateLimit-Limit': { type: 'string', description: 'Requests a second this API key may make (RATE_LIMIT_MAX).' },
  'RateLimit-Remaining': { type: 'string', description: 'Requests left in the current second.' },
  'RateLimit-Reset': { type: 'string', description: 'Seconds until the count starts again.' },
};

/** The security scheme of every client route: an account's API key. */
const API_KEY_SCHEME = 'apiKey';

/** Routes anyone may call, without an API key. */
const isPublic = (url: string) => url.startsWith('/health/');

const REQUEST_ID = {
  type: 'string',
  description:
    "The request's id in the API's logs: the `X-Request-Id` sent, when well formed (`[A-Za-z0-9._:-]{1,128}`), else a fresh UUID.",
};

/**
 * Response headers the routes set, by `METHOD url` and status: Fastify's response schemas
 * describe bodies only, so they are added to the document here. The OpenAPI test checks each
 * against real answers.
 */
const RESPONSE_HEADERS: Record<string, Record<string, Record<string, JsonSchema>>> = {
  'POST /payment/purchase': {
    200: { Location: LOCATION, 'Preference-Applied': { type: 'string', description: 'The wait granted, `wait=N`.' } },
    202: { Location: LOCATION },
    204: { Location: { ...LOCATION, description: 'The original purchase this key was first used for.' } },
  },
};

/**
 * Answers that are not JSON, by `METHOD url` and status: their media type and what they say,
 * in place of the JSON body the route's schema would describe.
 */
const RESPONSE_MEDIA: Record<string, Record<string, { type: string; description: string; body: JsonSchema }>> = {
  'GET /payment/purchase/:purchaseId/events': {
    200: {
      type: 'text/event-stream',
      description:
        'Server-Sent Events of the purchase: the current status first, then one event per change, closed after the final one (or after `STATUS_STREAM_MAX_SECONDS`: reconnect)',
      body: {
        type: 'string',
        description:
          'Events named `status`, each with `data:` a purchase as `GET /payment/purchase/{purchaseId}` answers it (JSON on one line), and a `: keep-alive` comment every 15 s.',
        examples: [
          'event: status\ndata: {"purchaseId":"5eb2c54f-36da-465c-8cfd-5adf0539e824","status":"queued",…}\n\n',
        ],
      },
    },
  },
};

const RESPONSE_DESCRIPTIONS: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted: queued; poll `Location`, or send `Prefer: wait=N` to wait for the outcome',
  204: 'Duplicate: this `Idempotency-Key` was used before; `Location` points at the original purchase',
  400: 'Invalid input (`VALIDATION_FAILED`, `INVALID_JSON`, `INVALID_IDEMPOTENCY_KEY`)',
  401: '`UNAUTHENTICATED`: no `Authorization: Bearer <API key>`, or a key that is malformed, unknown or revoked',
  404: 'Not found',
  409: 'Conflict',
  413: 'Body too large',
  415: 'Not `application/json`',
  422: "Unknown user or product (another account's are unknown too), or an `Idempotency-Key` reused with another body",
  429: '`RATE_LIMITED`: more than `RATE_LIMIT_MAX` requests a second with this API key; nothing was done',
  503: 'A dependency is unavailable, the API is overloaded and shed the request (`OVERLOADED`), or every events stream place is taken (`TOO_MANY_STREAMS`); retry after `Retry-After` seconds',
};

/** The error body; a 503 of that shape always carries `Retry-After` (`serviceUnavailable`). */
const isErrorBody = (schema: JsonSchema) =>
  typeof schema.properties === 'object' && schema.properties !== null && 'code' in schema.properties;

/**
 * The zod type provider's transform (zod schemas to JSON Schema), plus what zod cannot say:
 * each status's description and its response headers.
 */
const transform: Transform = (route) => {
  const transformed = jsonSchemaTransform(route) as { schema: Record<string, unknown>; url: string };
  // Every client route needs an account's API key; health checks need none.
  transformed.schema.security = isPublic(route.url) ? [] : [{ [API_KEY_SCHEME]: [] }];
  const response = transformed.schema.response as Record<string, JsonSchema> | undefined;
  if (!response) return transformed;
  const methods = [route.route.method].flat();
  const headersByStatus = methods.map((method) => RESPONSE_HEADERS[`${method} ${route.url}`]).find(Boolean) ?? {};
  const mediaByStatus = methods.map((method) => RESPONSE_MEDIA[`${method} ${route.url}`]).find(Boolean) ?? {};
  for (const [status, schema] of Object.entries(response)) {
    const media = mediaByStatus[status];
    if (media) {
      response[status] = {
        'x-response-description': media.description,
        headers: { ...headersByStatus[status], 'X-Request-Id': REQUEST_ID },
        content: { [media.type]: { schema: media.body } },
      };
      continue;
    }
    const headers: Record<string, JsonSchema> = { ...headersByStatus[status], 'X-Request-Id': REQUEST_ID };
    const notReady = status === '503' && !isErrorBody(schema);
    if (status === '503' && !notReady) headers['Retry-After'] = RETRY_AFTER;
    if (status === '401') headers['WWW-Authenticate'] = { type: 'string', description: '`Bearer realm="payonce"`' };
    if (status === '429') Object.assign(headers, { 'Retry-After': RETRY_AFTER, ...RATE_LIMIT_HEADERS });
    response[status] = {
      ...schema,
      'x-response-description': notReady
        ? 'Not ready: a dependency failed its check, or shutdown has begun'
        : (RESPONSE_DESCRIPTIONS[status] ?? 'Response'),
      headers,
    };
  }
  return transformed;
};

/**
 * Registers the OpenAPI 3.1 document (`GET /openapi.json`, generated from every route's zod
 * schemas) and Swagger UI at `/docs`, its assets served from the package (no CDN). Call before
 * the routes are registered: @fastify/swagger collects routes as they are added. Client routes
 * require the `apiKey` bearer scheme; health checks are public.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'payonce',
        version: packageJson.version,
        description: packageJson.description,
      },
      components: {
        securitySchemes: {
          [API_KEY_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description:
              "An account's API key (`pk_live_…`), from `npm run -s account:create` or `apikey:create`, sent as `Authorization: Bearer <key>`.",
          },
        },
      },
    },
    transform,
  });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, () => app.swagger());
  await app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX });
}
