import { randomUUID } from 'node:crypto';
import { servePurchases } from './purchase-route.js';

/**
 * The floor of every API here: a Fastify process that validates the same body and headers as
 * `POST /payment/purchase` and answers 202 without doing anything else. No API on this machine
 * can beat it; it is reported beside the naive service for context.
 */
await servePurchases({
  port: Number(process.env.PORT ?? 3100),
  logLevel: process.env.LOG_LEVEL ?? 'warn',
  decide: async () => ({ accepted: true, purchaseId: randomUUID() }),
});
