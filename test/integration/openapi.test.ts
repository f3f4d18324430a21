import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountsRepository } from '../../src/shared/accounts/accounts-repository.js';
import { createPaymentsRepository } from '../../src/shared/purchase/payments-repository.js';
import type { PurchaseProducer } from '../../src/shared/queue/purchase-producer.js';
import { seedUserAndProduct } from '../support/services.js';
import { createTestStack, type TestStack } from '../support/stack.js';

interface DocumentedResponse {
  headers?: Record<string, { schema: Record<string, unknown> }>;
  content?: Record<string, { schema: Record<string, unknown> }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  components?: { securitySchemes?: Record<string, unknown> };
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: { in: string; name: string }[];
        security?: Array<Record<string, string[]>>;
        responses: Record<string, DocumentedResponse>;
      }
    >
  >;
}

const BODY_LIMIT_BYTES = 1024;
/** Low enough for one test to exceed it with a key of its own, high enough for the others never to. */
const RATE_LIMIT_MAX = 60;
let stack: TestStack;
let document: OpenApiDocument;
let ids: { userId: number; productId: number };
/** Set to make the next enqueues fail, as an unreachable queue would (a 503). */
let queueDown = false;

beforeAll(async () => {
  stack = await createTestStack({
    env: { BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES), RATE_LIMIT_MAX: String(RATE_LIMIT_MAX) },
    wrapProducer: (producer): PurchaseProducer => ({
      ...producer,
      enqueuePurchase: async (job) => {
        if (queueDown) throw new Error('queue unreachable (test)');
        return producer.enqueuePurchase(job);
      },
    }),
  });
  const { userId, productId } = await seedUserAndProduct(stack.database.db);
  ids = { userId, productId };
  const answer = await stack.app.inject({ method: 'GET', url: '/openapi.json' });
  expect(answer.statusCode).toBe(200);
  document = answer.json();
});
afterAll(() => stack?.close());

/** `METHOD /path/{param}` of every route the app serves, from Fastify's own route tree. */
function appRoutes(): string[] {
  const routes: string[] = [];
  const stackOfPaths: string[] = [];
  for (const line of stack.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    const path = (stackOfPaths[depth - 1] ?? '') + match[2]!;
    stackOfPaths[depth] = path;
    stackOfPaths.length = depth + 1;
    for (const method of (match[3] ?? '').split(', ').filter(Boolean)) {
      routes.push(`${method} ${path.replace(/:(\w+)/g, '{$1}')}`);
    }
  }
  return routes;
}

const documentedRoutes = () =>
  Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
  );

const ajv = addFormats.default(new Ajv2020({ strict: false, allErrors: true }));

/** Response headers of the API's own that the document must mention wherever they are sent. */
const API_HEADERS = ['location', 'retry-after', 'preference-applied', 'www-authenticate', 'x-request-id'];

/** Every `route status` a test below produced and checked against the document. */
const checked = new Set<string>();

/** Asserts a real answer matches what the document says for that route and status. */
function expectDocumented(route: string, answer: LightMyRequestResponse, status: number): void {
  expect(answer.statusCode, answer.body).toBe(status);
  const [method, path] = route.split(' ') as [string, string];
  const documented = document.paths[path]?.[method.toLowerCase()]?.responses[String(status)];
  expect(documented, `${route} ${status} is not in the document`).toBeDefined();
  const documentedHeaders = Object.keys(documented!.headers ?? {}).map((header) => header.toLowerCase());
  for (const header of documentedHeaders) {
    expect(answer.headers[header], `${route} ${status} sends no ${header}`).toBeDefined();
  }
  for (const header of API_HEADERS.filter((name) => answer.headers[name] !== undefined)) {
    expect(documentedHeaders, `${route} ${status} sends ${header}, undocumented`).toContain(header);
  }
  if (documented!.content?.['text/event-stream']) {
    // Server-Sent Events: each event's data is a purchase as the single read documents it.
    expect(answer.headers['content-type']).toMatch(/^text\/event-stream/);
    const validate = ajv.compile(
      document.paths['/payment/purchase/{purchaseId}']!.get!.responses['200']!.content!['application/json']!.schema,
    );
    const events = [...answer.body.matchAll(/^event: status\ndata: (.*)$/gm)].map(
      (match) => JSON.parse(match[1]!) as unknown,
    );
    expect(events.length, answer.body).toBeGreaterThan(0);
    for (const event of events)
      expect(validate(event), `${route} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    checked.add(`${route} ${status}`);
    return;
  }
  const schema = documented!.content?.['application/json']?.schema;
  if (schema === undefined) {
    expect(answer.body, `${route} ${status} documents no body`).toBe('');
  } else {
    const validate = ajv.compile(schema);
    expect(validate(answer.json()), `${route} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  }
  checked.add(`${route} ${status}`);
}

const json = (method: 'POST' | 'GET' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) =>
  stack.app.inject({
    method,
    url,
    // A request without a body (a GET, a DELETE, a POST that takes none) says no content type.
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
const textPlain = (url: string) =>
  stack.app.inject({ method: 'POST', url, headers: { 'content-type': 'text/plain' }, payload: 'hello' });
const tooLarge = (url: string) => json('POST', url, { name: 'x'.repeat(BODY_LIMIT_BYTES * 2) });

/**
 * Documented statuses no test here produces cheaply: a `Prefer: wait` answer needs a worker, and
 * a 503 from Postgres or Redis needs them down. Anything else documented must be exercised.
 */
const NOT_EXERCISED = [
  'POST /payment/purchase 200',
  'POST /user 503',
  'GET /user 503',
  'POST /product 503',
  'GET /product 503',
  'GET /payment/purchase/{purchaseId} 503',
  'POST /webhook-endpoints 503',
  'GET /webhook-endpoints 503',
  'DELETE /webhook-endpoints/{id} 503',
  'POST /webhook-endpoints/{id}/rotate-secret 503',
  'GET /webhook-endpoints/{id}/deliveries 503',
  'POST /events/{id}/redeliver 503',
  'GET /payment/purchase 503',
  'GET /payment/purchase/{purchaseId}/events 503',
];

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document about payonce, with the API key scheme on every client route', async () => {
    const validator = new Validator();
    const result = await validator.validate(document as unknown as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(document.openapi).toBe('3.1.0');
    expect(document.info).toMatchObject({ title: 'payonce', version: '0.1.0' });
    expect(document.components?.securitySchemes).toEqual({
      apiKey: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const operation of Object.values(methods)) {
        expect(operation.security, path).toEqual(path.startsWith('/health/') ? [] : [{ apiKey: [] }]);
      }
    }
  });

  it('lists every route the app serves, and no documentation route or page', () => {
    const served = appRoutes().filter(
      (route) => !route.startsWith('HEAD ') && !/ \/(openapi\.json|docs|demo)/.test(route) && route !== 'GET /',
    );
    expect(served).toContain('GET /payment/purchase/{purchaseId}');
    expect(served.length).toBeGreaterThanOrEqual(8);
    expect(documentedRoutes().sort()).toEqual(served.sort());
  });

  it('documents a 503 with Retry-After on every route load shedding can answer (all but /health/*)', () => {
    for (const [path, methods] of Object.entries(document.paths)) {
      if (path.startsWith('/health/')) continue;
      for (const [method, operation] of Object.entries(methods)) {
        const shed = operation.responses['503'];
        expect(shed, `${method} ${path}`).toBeDefined();
        expect(Object.keys(shed!.headers ?? {}), `${method} ${path}`).toContain('Retry-After');
        const schema = shed!.content?.['application/json']?.schema;
        const validate = ajv.compile(schema ?? {});
        const body = { statusCode: 503, code: 'OVERLOADED', error: 'Service Unavailable', message: 'overloaded' };
        expect(validate(body), `${method} ${path}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      }
    }
  });

  it('documents the request headers of POST /payment/purchase', () => {
    const headers = document.paths['/payment/purchase']!.post!.parameters!.filter((p) => p.in === 'header');
    expect(headers.map((p) => p.name.toLowerCase()).sort()).toEqual(['idempotency-key', 'prefer']);
  });
});

describe('real answers match the document', () => {
  it('users', async () => {
    const username = `openapi_${randomUUID().slice(0, 8)}`;
    expectDocumented('POST /user', await json('POST', '/user', { username }), 201);
    expectDocumented('POST /user', await json('POST', '/user', { username }), 409);
    expectDocumented('POST /user', await json('POST', '/user', { username: 'no spaces' }), 400);
    expectDocumented('POST /user', await textPlain('/user'), 415);
    expectDocumented('POST /user', await tooLarge('/user'), 413);
    expectDocumented('GET /user', await json('GET', '/user'), 200);
    expectDocumented('GET /user', await json('GET', '/user?limit=0'), 400);
  });

  it('products', async () => {
    expectDocumented('POST /product', await json('POST', '/product', { name: 'Docs', price: 100 }), 201);
    expectDocumented('POST /product', await json('POST', '/product', { name: 'Docs', price: -1 }), 400);
    expectDocumented('POST /product', await textPlain('/product'), 415);
    expectDocumented('POST /product', await tooLarge('/product'), 413);
    expectDocumented('GET /product', await json('GET', '/product'), 200);
    expectDocumented('GET /product', await json('GET', '/product?limit=abc'), 400);
  });

  it('purchases', async () => {
    const route = 'POST /payment/purchase';
    const key = { 'idempotency-key': `openapi-${randomUUID()}` };
    const accepted = await json('POST', '/payment/purchase', ids, key);
    expectDocumented(route, accepted, 202);
    const duplicate = await json('POST', '/payment/purchase', ids, key);
    expectDocumented(route, duplicate, 204);
    expect(duplicate.headers.location).toBe(accepted.headers.location);
    expectDocumented(route, await json('POST', '/payment/purchase', { userId: 'one' }), 400);
    expectDocumented(route, await json('POST', '/payment/purchase', ids, { 'idempotency-key': 'ünïcode' }), 400);
    expectDocumented(route, await json('POST', '/payment/purchase', { ...ids, userId: 2_000_000_000 }), 422);
    expectDocumented(route, await textPlain('/payment/purchase'), 415);
    expectDocumented(route, await tooLarge('/payment/purchase'), 413);
    queueDown = true;
    try {
      const unavailable = await json('POST', '/payment/purchase', ids, {
        'idempotency-key': `openapi-${randomUUID()}`,
      });
      expectDocumented(route, unavailable, 503);
    } finally {
      queueDown = false;
    }

    const status = 'GET /payment/purchase/{purchaseId}';
    expectDocumented(status, await json('GET', accepted.headers.location as string), 200);
    expectDocumented(status, await json('GET', `/payment/purchase/${randomUUID()}`), 404);
    expectDocumented(status, await json('GET', '/payment/purchase/not-a-uuid'), 400);

    const listing = 'GET /payment/purchase';
    expectDocumented(listing, await json('GET', '/payment/purchase?limit=1'), 200);
    expectDocumented(listing, await json('GET', '/payment/purchase?status=lost'), 400);

    // No worker runs here: the purchase is finished by hand, so its stream ends after one event.
    const events = 'GET /payment/purchase/{purchaseId}/events';
    const { purchaseId } = accepted.json() as { purchaseId: string };
    const row = await stack.database.db('purchases').where({ id: purchaseId }).first();
    await stack.database.db('payments').insert({
      id: purchaseId,
      user_id: row.user_id,
      product_id: row.product_id,
      amount: row.amount,
      status: 'succeeded',
      idempotency_key: row.idempotency_key,
      accepted_at: row.accepted_at,
    });
    expectDocumented(events, await json('GET', `/payment/purchase/${purchaseId}/events`), 200);
    expectDocumented(events, await json('GET', `/payment/purchase/${randomUUID()}/events`), 404);
    expectDocumented(events, await json('GET', '/payment/purchase/not-a-uuid/events'), 400);
  });

  it('every client route refuses a request without a valid API key, and limits a key past RATE_LIMIT_MAX', async () => {
    const routes: Array<[string, () => Promise<LightMyRequestResponse>]> = [
      ['POST /user', () => json('POST', '/user', { username: 'x' }, auth)],
      ['GET /user', () => json('GET', '/user', undefined, auth)],
      ['POST /product', () => json('POST', '/product', { name: 'x', price: 1 }, auth)],
      ['GET /product', () => json('GET', '/product', undefined, auth)],
      ['POST /payment/purchase', () => json('POST', '/payment/purchase', ids, auth)],
      ['GET /payment/purchase/{purchaseId}', () => json('GET', `/payment/purchase/${randomUUID()}`, undefined, auth)],
      ['POST /webhook-endpoints', () => json('POST', '/webhook-endpoints', { url: 'https://example.com/h' }, auth)],
      ['GET /webhook-endpoints', () => json('GET', '/webhook-endpoints', undefined, auth)],
      ['DELETE /webhook-endpoints/{id}', () => json('DELETE', `/webhook-endpoints/${randomUUID()}`, undefined, auth)],
      [
        'POST /webhook-endpoints/{id}/rotate-secret',
        () => json('POST', `/webhook-endpoints/${randomUUID()}/rotate-secret`, undefined, auth),
      ],
      [
        'GET /webhook-endpoints/{id}/deliveries',
        () => json('GET', `/webhook-endpoints/${randomUUID()}/deliveries`, undefined, auth),
      ],
      ['POST /events/{id}/redeliver', () => json('POST', `/events/msg_${'0'.repeat(32)}/redeliver`, undefined, auth)],
      ['GET /payment/purchase', () => json('GET', '/payment/purchase', undefined, auth)],
      [
        'GET /payment/purchase/{purchaseId}/events',
        () => json('GET', `/payment/purchase/${randomUUID()}/events`, undefined, auth),
      ],
    ];
    let auth: Record<string, string> = { authorization: '' };
    for (const [route, send] of routes) expectDocumented(route, await send(), 401);

    // A key of another account, used up: every client route answers 429 for the rest of the second.
    // The limiter counts per second, so the whole check must fit in one: it starts as a second
    // begins, and is tried again (with a fresh key) if a slow machine let the second run out.
    const accounts = createAccountsRepository({ db: stack.database.db });
    let limited: Array<[string, LightMyRequestResponse]> = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      auth = { authorization: `Bearer ${(await accounts.createAccount('openapi-limits')).apiKey}` };
      await sleep(1_000 - (Date.now() % 1_000) + 10);
      const second = Math.floor(Date.now() / 1_000);
      await Promise.all(Array.from({ length: RATE_LIMIT_MAX }, () => json('GET', '/user', undefined, auth)));
      limited = [];
      for (const [route, send] of routes) limited.push([route, await send()]);
      if (Math.floor(Date.now() / 1_000) === second) break;
    }
    for (const [route, answer] of limited) expectDocumented(route, answer, 429);
  });

  it('webhook endpoints and events', async () => {
    const route = 'POST /webhook-endpoints';
    const created = await json('POST', '/webhook-endpoints', { url: 'https://hooks.example.com/payonce' });
    expectDocumented(route, created, 201);
    const { id } = created.json<{ id: string }>();
    expectDocumented(route, await json('POST', '/webhook-endpoints', { url: 'https://x.example', events: [] }), 400);
    expectDocumented(route, await json('POST', '/webhook-endpoints', { url: 'http://10.0.0.1/h' }), 422);
    expectDocumented(route, await textPlain('/webhook-endpoints'), 415);
    expectDocumented(route, await json('POST', '/webhook-endpoints', { url: 'x'.repeat(BODY_LIMIT_BYTES * 2) }), 413);
    expectDocumented('GET /webhook-endpoints', await json('GET', '/webhook-endpoints'), 200);

    const rotate = 'POST /webhook-endpoints/{id}/rotate-secret';
    expectDocumented(rotate, await json('POST', `/webhook-endpoints/${id}/rotate-secret`), 200);
    expectDocumented(rotate, await json('POST', `/webhook-endpoints/${randomUUID()}/rotate-secret`), 404);
    expectDocumented(rotate, await json('POST', '/webhook-endpoints/not-a-uuid/rotate-secret'), 400);
    const deliveries = 'GET /webhook-endpoints/{id}/deliveries';
    expectDocumented(deliveries, await json('GET', `/webhook-endpoints/${id}/deliveries`), 200);
    expectDocumented(deliveries, await json('GET', `/webhook-endpoints/${id}/deliveries?limit=0`), 400);
    expectDocumented(deliveries, await json('GET', `/webhook-endpoints/${randomUUID()}/deliveries`), 404);

    // An event to redeliver: the purchase's outcome, written as the worker writes it.
    const accepted = await json('POST', '/payment/purchase', ids, { 'idempotency-key': `openapi-${randomUUID()}` });
    const { purchaseId } = accepted.json<{ purchaseId: string }>();
    const job = await stack.database.db('purchases').where({ id: purchaseId }).first();
    await createPaymentsRepository({ db: stack.database.db }).recordPayment(
      {
        purchaseId,
        userId: job.user_id,
        productId: job.product_id,
        amount: job.amount,
        idempotencyKey: job.idempotency_key,
        acceptedAt: job.accepted_at.toISOString(),
      },
      { status: 'succeeded', failureReason: null },
    );
    const event = await stack.database.db('webhook_events').where({ purchase_id: purchaseId }).first('id');
    const redeliver = 'POST /events/{id}/redeliver';
    expectDocumented(redeliver, await json('POST', `/events/${event.id}/redeliver`), 202);
    expectDocumented(redeliver, await json('POST', `/events/msg_${'0'.repeat(32)}/redeliver`), 404);
    expectDocumented(redeliver, await json('POST', '/events/not-an-event/redeliver'), 400);

    const remove = 'DELETE /webhook-endpoints/{id}';
    expectDocumented(remove, await json('DELETE', `/webhook-endpoints/${id}`), 204);
    expectDocumented(remove, await json('DELETE', `/webhook-endpoints/${id}`), 404);
    expectDocumented(remove, await json('DELETE', '/webhook-endpoints/not-a-uuid'), 400);
  });

  it('health', async () => {
    expectDocumented('GET /health/live', await json('GET', '/health/live'), 200);
    expectDocumented('GET /health/ready', await json('GET', '/health/ready'), 200);
    stack.root.beginShutdown();
    expectDocumented('GET /health/ready', await json('GET', '/health/ready'), 503);
  });

  it('left no documented status unexercised (but the listed ones)', () => {
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).flatMap(([method, operation]) =>
        Object.keys(operation.responses).map((status) => `${method.toUpperCase()} ${path} ${status}`),
      ),
    );
    expect([...checked, ...NOT_EXERCISED].sort()).toEqual(documented.sort());
  });
});

describe('GET /docs', () => {
  it('serves Swagger UI as HTML, its assets from the package, and the same document', async () => {
    const page = await stack.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('swagger-ui');
    const bundle = await stack.app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
    expect(bundle.statusCode).toBe(200);
    const json = await stack.app.inject({ method: 'GET', url: '/docs/json' });
    expect(json.json()).toEqual(document);
  });
});
