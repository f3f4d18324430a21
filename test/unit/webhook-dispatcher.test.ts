import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it, vi } from 'vitest';
import type { AttemptResult, ClaimedDelivery } from '../../src/shared/webhooks/deliveries-repository.js';
import { newWebhookSecret } from '../../src/shared/webhooks/signing.js';
import { createWebhookDispatcher } from '../../src/worker/webhooks/dispatcher.js';

const NOW = Date.parse('2026-12-04T12:00:00Z');
const secret = newWebhookSecret();

function delivery(overrides: Partial<ClaimedDelivery> = {}): ClaimedDelivery {
  return {
    id: '1',
    eventId: 'msg_0123456789abcdef0123456789abcdef',
    payload: '{"type":"purchase.succeeded"}',
    retryStartedAt: new Date(NOW - 60_000),
    attempt: 1,
    url: 'https://hooks.example.com/payonce',
    secrets: [secret],
    endpointRemoved: false,
    ...overrides,
  };
}

function setup(claimed: ClaimedDelivery[], answer: AttemptResult) {
  const recorded: Array<{ delivery: ClaimedDelivery; result: AttemptResult; retryAt: Date | null }> = [];
  const send = vi.fn(async (_url: string, _headers: Record<string, string>, _body: string) => answer);
  const dispatcher = createWebhookDispatcher({
    deliveries: {
      claimDue: vi.fn(async () => claimed),
      recordAttempt: vi.fn(async (d: ClaimedDelivery, result: AttemptResult, retryAt: Date | null) => {
        recorded.push({ delivery: d, result, retryAt });
      }),
    },
    send,
    logger: pino({ level: 'silent' }),
    concurrency: 10,
    timeoutMs: 5_000,
    leaseMarginMs: 30_000,
    retryBaseMs: 5_000,
    retryHours: 24,
    now: () => NOW,
    random: () => 0.5,
  });
  return { dispatcher, recorded, send };
}

const ok: AttemptResult = { statusCode: 204, error: null, durationMs: 3, delivered: true };
const refused: AttemptResult = { statusCode: 500, error: 'HTTP 500', durationMs: 3, delivered: false };

describe('the webhook dispatcher', () => {
  it('sends the stored body, signed for the event id, and records it delivered', async () => {
    const { dispatcher, recorded, send } = setup([delivery()], ok);
    expect(await dispatcher.dispatchOnce()).toBe(1);
    const [url, headers, body] = send.mock.calls[0]!;
    expect(url).toBe('https://hooks.example.com/payonce');
    expect(body).toBe('{"type":"purchase.succeeded"}');
    expect(headers['webhook-id']).toBe('msg_0123456789abcdef0123456789abcdef');
    expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
    expect(recorded).toEqual([{ delivery: delivery(), result: ok, retryAt: null }]);
  });

  it('signs with every secret in use, so both sides of a rotation verify', async () => {
    const next = newWebhookSecret();
    const { dispatcher, send } = setup([delivery({ secrets: [next, secret] })], ok);
    await dispatcher.dispatchOnce();
    const [, headers, body] = send.mock.calls[0]!;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    for (const key of [next, secret]) expect(() => new Webhook(key).verify(body, headers)).not.toThrow();
  });

  it('retries a failure after an exponential backoff, doubling per attempt, capped at an hour', async () => {
    const delays: number[] = [];
    for (const attempt of [1, 2, 3, 4, 12]) {
      const { dispatcher, recorded } = setup([delivery({ attempt })], refused);
      await dispatcher.dispatchOnce();
      delays.push(recorded[0]!.retryAt!.getTime() - NOW);
    }
    // random() = 0.5: no jitter.
    expect(delays).toEqual([5_000, 10_000, 20_000, 40_000, 3_600_000]);
  });

  it('gives a delivery up once its next try would fall past WEBHOOK_RETRY_HOURS', async () => {
    const old = delivery({ attempt: 15, retryStartedAt: new Date(NOW - 24 * 3_600_000 + 60_000) });
    const { dispatcher, recorded } = setup([old], refused);
    await dispatcher.dispatchOnce();
    expect(recorded[0]!.retryAt).toBeNull();
  });

  it('sends nothing to a removed endpoint, and fails its delivery for good', async () => {
    const { dispatcher, recorded, send } = setup([delivery({ endpointRemoved: true })], ok);
    await dispatcher.dispatchOnce();
    expect(send).not.toHaveBeenCalled();
    expect(recorded[0]).toMatchObject({
      result: { delivered: false, error: 'the endpoint was removed' },
      retryAt: null,
    });
  });

  it('keeps its places busy while running: a slow endpoint holds one place, the others go on', async () => {
    // Twelve due deliveries, the first to an endpoint that does not answer until released.
    const queue = Array.from({ length: 12 }, (_, index) =>
      delivery({ id: String(index), url: index === 0 ? 'https://slow.example.com/' : 'https://hooks.example.com/' }),
    );
    let answerSlow = () => {};
    const slow = new Promise<AttemptResult>((resolve) => (answerSlow = () => resolve(ok)));
    const recorded: string[] = [];
    const claimDue = vi.fn(async (limit: number) => queue.splice(0, limit));
    const dispatcher = createWebhookDispatcher({
      deliveries: {
        claimDue,
        recordAttempt: vi.fn(async (d: ClaimedDelivery) => void recorded.push(d.id)),
      },
      send: vi.fn(async (url: string) => (url.startsWith('https://slow.') ? slow : ok)),
      logger: pino({ level: 'silent' }),
      concurrency: 3,
      timeoutMs: 5_000,
      leaseMarginMs: 30_000,
      retryBaseMs: 5_000,
      retryHours: 24,
    });
    // An interval far longer than the test: only freed places can pull the rest in.
    const running = dispatcher.start(60_000);
    await vi.waitFor(() => expect(recorded).toHaveLength(11), { timeout: 2_000 });
    expect(recorded).not.toContain('0');
    // Never more in flight than its places: each claim asked for what was free.
    expect(Math.max(...claimDue.mock.calls.map(([limit]) => limit))).toBe(3);
    answerSlow();
    await running.stop();
    expect(recorded).toContain('0');
  });
});
