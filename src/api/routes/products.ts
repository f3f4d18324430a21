import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Product, ProductsRepository } from '../catalog/products-repository.js';
import { errorResponses, Id, ListQuery } from '../http-schemas.js';

/** Postgres text cannot hold U+0000; refuse it as bad input rather than fail the insert. */
// eslint-disable-next-line no-control-regex -- matching U+0000 is the point
const NO_NUL = /^[^\u0000]*$/;

const ProductView = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  price: z.number().int().nonnegative(),
  createdAt: z.iso.datetime(),
});
const toProductView = (product: Product) => ({ ...product, createdAt: product.createdAt.toISOString() });

export const productsRoutes: FastifyPluginAsyncZod<{ products: ProductsRepository }> = async (app, { products }) => {
  app.post('/product', {
    schema: {
      body: z.strictObject({
        name: z.string().trim().min(1).max(200).regex(NO_NUL, 'must not contain NUL characters'),
        description: z.string().max(2000).regex(NO_NUL, 'must not contain NUL characters').nullable().optional(),
        /** Integer cents. */
        price: z.number().int().nonnegative().max(2_147_483_647),
      }),
      response: { 201: ProductView, ...errorResponses(400, 401, 413, 415, 429, 503) },
    },
    handler: async (request, reply) => {
      const { name, description, price } = request.body;
      const product = await products.createProduct(request.accountId, {
        name,
        description: description ?? null,
        price,
      });
      return reply.code(201).send(toProductView(product));
    },
  });

  app.get('/product', {
    schema: { querystring: ListQuery, response: { 200: z.array(ProductView), ...errorResponses(400, 401, 429, 503) } },
    handler: async (request) =>
      (await products.listProducts(request.accountId, request.query.limit)).map(toProductView),
  });
};
