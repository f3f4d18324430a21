import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PurchaseBody, PurchaseHeaders } from '../src/api/http-schemas.js';

/**
 * The benchmark's baseline: a Fastify process that validates the same body and headers as
 * `POST /payment/purchase` and answers 202 without doing anything else. No API on this machine
 * can beat it, so payonce's accept and duplicate paths are reported as fractions of it.
 */
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } });
app.setValidatorCompiler(validatorCompiler);
app.setSerializerCompiler(serializerCompiler);
app.withTypeProvider<ZodTypeProvider>().post('/payment/purchase', {
  schema: {
    body: PurchaseBody,
    headers: PurchaseHeaders,
    response: { 202: z.object({ purchaseId: z.uuid(), status: z.literal('queued'), statusUrl: z.string() }) },
  },
  handler: async (_request, reply) => {
    const purchaseId = randomUUID();
    const statusUrl = `/payment/purchase/${purchaseId}`;
    return reply.code(202).header('location', statusUrl).send({ purchaseId, status: 'queued', statusUrl });
  },
});
app.get('/health/live', async () => ({ status: 'ok' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3100) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
