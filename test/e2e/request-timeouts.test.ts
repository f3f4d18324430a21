import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import type { RunningApi } from '../support/processes.js';
import { createPurchaseClient } from '../support/purchase-client.js';
import { seedUserAndProduct } from '../support/services.js';

const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1_000;
/** However slow the client, a test's socket lives no longer than this. */
const GIVE_UP_MS = 6_000;

/**
 * A client on a raw socket to the API (loopback only) that sends `opening`, then `drip` every
 * `everyMs` until the server closes the connection or GIVE_UP_MS passes. Resolves with what the
 * server sent and when it closed (null if it never did).
 */
function slowClient(port: number, opening: string, drip: string, everyMs = 100) {
  return new Promise<{ closedAfterMs: number | null; received: string }>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const started = performance.now();
    let received = '';
    let dripping: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => finish(null), GIVE_UP_MS);
    function finish(closedAfterMs: number | null) {
      clearInterval(dripping);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedAfterMs, received });
    }
    socket.on('connect', () => {
      if (opening) socket.write(opening);
      if (drip) dripping = setInterval(() => socket.write(drip), everyMs);
    });
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.on('close', () => finish(performance.now() - started));
    // A write racing the server's close; the close says what happened.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
  });
}

describe('request timeouts', () => {
  let stack: ProcessStack;
  let api: RunningApi;
  let port: number;

  beforeAll(async () => {
    stack = await createProcessStack();
    api = await stack.startApi({
      HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    });
    port = Number(new URL(api.url).port);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it.each([
    // A header line every 100 ms: traffic enough to defeat an idle timeout.
    [
      'a slowloris client that never finishes its headers',
      'POST /payment/purchase HTTP/1.1\r\nHost: 127.0.0.1\r\n',
      'X-Slow: 1\r\n',
      HEADERS_TIMEOUT_MS,
    ],
    [
      'a client that trickles its body',
      // Authenticated ({auth}: the stack's key), so its body is read rather than refused at once.
      'POST /payment/purchase HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n',
      ' ',
      REQUEST_TIMEOUT_MS,
    ],
    ['a connection that never sends a request', '', '', HEADERS_TIMEOUT_MS],
  ])('cuts off %s', async (_client, opening, drip, timeoutMs) => {
    const authorized = opening.replace('{auth}', `Authorization: Bearer ${stack.apiKey}\r\n`);
    const { closedAfterMs, received } = await slowClient(port, authorized, drip);
    // Closed, answering 408, once the bound had passed and soon after.
    expect(closedAfterMs).not.toBeNull();
    expect(closedAfterMs!).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(closedAfterMs!).toBeLessThan(timeoutMs + 1_500);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('does not cut a request that arrived in time, however long its Prefer: wait', async () => {
    const { userId, productId } = await seedUserAndProduct(stack.db);
    // No worker runs: the request waits its full 2 s, twice REQUEST_TIMEOUT_MS.
    const result = await createPurchaseClient(api.url).purchase({ userId, productId }, { prefer: 'wait=2' });
    expect(result.status).toBe(202);
    expect(result.elapsedMs).toBeGreaterThanOrEqual(1_900);
  });
});
