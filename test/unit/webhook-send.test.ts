import { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { sendWebhook, type Resolve } from '../../src/worker/webhooks/send.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const BODY = '{"type":"purchase.succeeded"}';
const HEADERS = { 'webhook-id': 'msg_0123456789abcdef0123456789abcdef' };

/** A resolver that answers `address` for every name, and never asks DNS. */
const resolvingTo = (address: string) => vi.fn<Resolve>(async () => [{ address, family: 4 }]);

/**
 * Sending one webhook (src/worker/webhooks/send.ts) to a receiver of the test's own on 127.0.0.1:
 * its timeout, and its check of the addresses a name resolves to before connecting.
 */
describe('sending a webhook', () => {
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
  });
  afterEach(() => {
    receiver.answerWith({ status: 200 });
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('counts a 2xx slower than its timeout as a failed attempt, and a prompt one as delivered', async () => {
    const options = { timeoutMs: 200, allowedHosts: ['127.0.0.1'] };
    const before = receiver.received().length;

    receiver.answerWith({ status: 200, delayMs: 500 });
    const slow = await sendWebhook(`${receiver.origin}/slow`, HEADERS, BODY, options);
    expect(slow).toMatchObject({ delivered: false, statusCode: null, error: 'no answer within 200 ms' });
    // It got there: the answer, not the connection, was too late.
    expect(
      receiver
        .received()
        .slice(before)
        .map((request) => request.path),
    ).toEqual(['/slow']);

    receiver.answerWith({ status: 200 });
    const prompt = await sendWebhook(`${receiver.origin}/prompt`, HEADERS, BODY, options);
    expect(prompt).toMatchObject({ delivered: true, statusCode: 200, error: null });
  });

  it('refuses a name that resolves to a private address without opening a connection', async () => {
    // Should the check ever let it through, no socket may reach 10.0.0.1: every connect fails here.
    const connect = vi.spyOn(Socket.prototype, 'connect').mockImplementation(() => {
      throw new Error('a connection was attempted');
    });
    const resolve = resolvingTo('10.0.0.1');

    const result = await sendWebhook(`http://hooks.test:${receiver.port}/payonce`, HEADERS, BODY, {
      timeoutMs: 2_000,
      allowedHosts: ['127.0.0.1'],
      resolve,
    });

    expect(resolve).toHaveBeenCalledWith('hooks.test');
    expect(result).toMatchObject({
      delivered: false,
      statusCode: null,
      error: 'refused: hooks.test resolves to 10.0.0.1, which is not a public address',
    });
    expect(connect).not.toHaveBeenCalled();
  });

  it('connects to the allowed address a name resolved to, not to what DNS would say', async () => {
    const resolve = resolvingTo('127.0.0.1');
    const before = receiver.received().length;

    // hooks.test resolves nowhere in DNS (.test is reserved): only the checked address reaches the receiver.
    const result = await sendWebhook(`http://hooks.test:${receiver.port}/payonce`, HEADERS, BODY, {
      timeoutMs: 2_000,
      allowedHosts: ['127.0.0.1'],
      resolve,
    });

    expect(resolve).toHaveBeenCalledWith('hooks.test');
    expect(result).toMatchObject({ delivered: true, statusCode: 200, error: null });
    const [request] = receiver.received().slice(before);
    expect(request).toMatchObject({ method: 'POST', path: '/payonce', body: BODY });
    expect(request!.headers).toMatchObject({ host: `hooks.test:${receiver.port}`, ...HEADERS });
  });
});
