import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeContainer as closeApi, handler as apiHandler } from '../../src/api/lambda.js';
import { createPaymentsRepository } from '../../src/shared/purchase/payments-repository.js';
import { createPurchasesRepository } from '../../src/shared/purchase/purchases-repository.js';
import { closeContainer as closeWorker, handler as workerHandler } from '../../src/worker/lambda.js';
import { httpApiEvent, lambdaContext } from '../support/lambda-events.js';
import { startLambdaEnvironment, type LambdaEnvironment } from '../support/lambda-environment.js';
import { seedUserAndProduct } from '../support/services.js';

/** The webhook dispatcher in the worker function, invoked as infra/webhooks.tf's schedule invokes it. */
describe('the worker Lambda on its webhook schedule', () => {
  let environment: LambdaEnvironment;
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.statusCode = 200;
      response.end();
    });
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    environment = await startLambdaEnvironment({ maxReceiveCount: 5, env: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
  });
  afterAll(async () => {
    await closeApi();
    await closeWorker();
    await environment?.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  it('sends the due deliveries when EventBridge invokes it with the dispatch event', async () => {
    const { database } = environment;
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    const registered = await apiHandler(
      httpApiEvent('POST', '/webhook-endpoints', { body: { url }, apiKey: database.account.apiKey }),
      lambdaContext('payonce-test-api'),
    );
    expect(registered.statusCode).toBe(201);
    const { secret } = JSON.parse(registered.body as string) as { secret: string };

    // An outcome of the account, written as the worker writes it (with its event).
    const { userId, productId } = await seedUserAndProduct(database.db, { price: 800 });
    const job = {
      purchaseId: randomUUID(),
      accountId: database.account.id,
      userId,
      productId,
      amount: 800,
      idempotencyKey: `user:${userId}:key:${randomUUID()}`,
      acceptedAt: new Date().toISOString(),
    };
    await createPurchasesRepository({ db: database.db }).recordAccepted(job);
    await createPaymentsRepository({ db: database.db }).recordPayment(job, {
      status: 'succeeded',
      failureReason: null,
    });

    const report = await workerHandler({ payonce: 'dispatch-webhooks' }, lambdaContext('payonce-test-worker', 60_000));
    expect(report).toEqual({ attempted: 1 });
    expect(received).toHaveLength(1);
    expect(new Webhook(secret).verify(received[0]!.body, received[0]!.headers as Record<string, string>)).toMatchObject(
      {
        type: 'purchase.succeeded',
        data: { purchaseId: job.purchaseId },
      },
    );
    // Nothing left: the next run sends nothing.
    expect(await workerHandler({ payonce: 'dispatch-webhooks' }, lambdaContext('payonce-test-worker', 60_000))).toEqual(
      {
        attempted: 0,
      },
    );
  });
});
