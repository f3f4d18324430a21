import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

/** Where the checkout page is served; `GET /` leads there. Its index.html names its assets under it too. */
const CHECKOUT_PATH = '/demo';

export interface CheckoutPageOptions {
  /**
   * The demo account's API key (DEMO_API_KEY, which only `npm start` sets): the page carries it
   * and uses it at once. Default: none, and the page asks for a key.
   */
  demoApiKey?: string | undefined;
}

/** The page's files (in `checkout/`, beside this module in src/ and, once built, in dist/) and their types. */
const ASSETS = {
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
} as const;

const escapeAttribute = (value: string) => value.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

/**
 * The checkout page: static HTML, a script and a stylesheet, read once at start-up, under helmet's
 * default Content-Security-Policy (the script is a file, not inline). It calls the client API
 * like any client, with an API key, so it needs no route of its own beyond its files; it is
 * public, as `/docs` is. Not served on Lambda (the bundle replaces this module: see
 * scripts/build-lambda.ts), whose zip holds no files beside `index.js`.
 */
export async function registerCheckoutPage(app: FastifyInstance, options: CheckoutPageOptions = {}): Promise<void> {
  const read = (name: string) => readFile(new URL(`./checkout/${name}`, import.meta.url), 'utf8');
  const page = (await read('index.html')).replace('{{DEMO_API_KEY}}', escapeAttribute(options.demoApiKey ?? ''));
  const assets = await Promise.all(
    Object.entries(ASSETS).map(async ([name, type]) => ({ name, type, body: await read(name) })),
  );

  app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect(CHECKOUT_PATH));
  app.get(CHECKOUT_PATH, { schema: { hide: true } }, (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      // It may carry an API key: never kept by a cache.
      .header('cache-control', 'no-store')
      .send(page),
  );
  for (const { name, type, body } of assets) {
    app.get(`${CHECKOUT_PATH}/${name}`, { schema: { hide: true } }, (_request, reply) =>
      reply.type(type).header('cache-control', 'no-cache').send(body),
    );
  }
}
