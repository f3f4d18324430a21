import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PurchaseBody, PurchaseHeaders } from '../src/api/http-schemas.js';

/** What a bench server made of one purchase: a new one (202) or a duplicate of an earlier one (204). */
export type PurchaseAnswer = { accepted: true; purchaseId: string } | { accepted: false };

/** A validated `POST /payment/purchase`. */
export interface PurchaseInput {
  userId: number;
  productId: number;
  /** The `Idempotency-Key` header, if sent. */
  headerKey: string | undefined;
}

const Accepted = z.object({ purchaseId: z.uuid(), status: z.literal('queued'), statusUrl: z.string() });

/**
 * Serves `POST /payment/purchase` with payonce's own body and header schemas and answer shapes
 * (202 with the status URL as body and `Location`, or 204), around `decide`: the bench's
 * baselines (bare Fastify, the naive service) differ only in what they do between validation and
 * the answer. Also `GET /health/live`, which the bench polls until the process listens. On
 * SIGTERM it stops listening, runs `close` and exits.
 */
export async function servePurchases(options: {
  host?: string;
  port: number;
  logLevel: string;
  decide: (purchase: PurchaseInput) => Promise<PurchaseAnswer>;
  /** Closes what `decide` uses, after the server has drained. */
  close?: () => Promise<unknown>;
}): Promise<void> {
  const { decide, close = async () => {} } = options;
  const app = Fastify({ logger: { level: options.logLevel } });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.withTypeProvider<ZodTypeProvider>().post('/payment/purchase', {
    schema: {
      body: PurchaseBody,
      headers: PurchaseHeaders,
      response: { 202: Accepted, 204: z.undefined() },
    },
    handler: async (request, reply) => {
      const answer = await decide({ ...request.body, headerKey: request.headers['idempotency-key'] });
      if (!answer.accepted) return reply.code(204).send(undefined);
      const statusUrl = `/payment/purchase/${answer.purchaseId}`;
      return reply
        .code(202)
        .header('location', statusUrl)
        .send({ purchaseId: answer.purchaseId, status: 'queued', statusUrl });
    },
  });
  app.get('/health/live', async () => ({ status: 'ok' }));
  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port });
  process.on(
    'SIGTERM',
    () =>
      void app
        .close()
        .then(close)
        .then(() => process.exit(0)),
  );
}
