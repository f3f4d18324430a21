import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Product, ProductsRepository } from '../../shared/catalog/products-repository.js';
import { errorResponses, Id, ListQuery } from '../http-schemas.js';

const ProductView = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  price: z.number().int().nonnegative(),
  createdAt: z.iso.datetime(),
});
const toProductView = (product: Product) => ({ ...product, createdAt: product.createdAt.toISOString() });

export const productsRoutes: FastifyPluginAsyncZod<{ products: ProductsRepository }> = async (
  app,
  { products },
) => {
  app.post('/product', {
    schema: {
      body: z.strictObject({
        name: z.string().trim().min(1).max(200),
        description: z.string().max(2000).nullable().optional(),
        /** Integer cents. */
        price: z.number().int().nonnegative().max(2_147_483_647),
      }),
      response: { 201: ProductView, ...errorResponses(400, 413, 415, 503) },
    },
    handler: async (request, reply) => {
      const { name, description, price } = request.body;
      const product = await products.createProduct({ name, description: description ?? null, price });
      return reply.code(201).send(toProductView(product));
    },
  });

  app.get('/product', {
    schema: { querystring: ListQuery, response: { 200: z.array(ProductView), ...errorResponses(400, 503) } },
    handler: async (request) => (await products.listProducts(request.query.limit)).map(toProductView),
  });
};
