import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createPurchaseStatusStreams,
  type PurchaseStatusStreamsOptions,
} from '../../src/api/purchase-status-streams.js';
import { createPurchaseWatches } from '../../src/api/purchase-watches.js';
import type { Purchase, PurchaseStatus } from '../../src/shared/purchase/purchase.js';
import type { PurchaseEventSource } from '../../src/shared/purchase/purchase-states.js';
import { purchaseWith } from '../support/purchase-fixtures.js';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

const purchase = purchaseWith;

/** An events source the test drives: `announce` and `resubscribe` as the store backends would. */
function fakeEvents() {
  const messages: Array<(payload: string) => void> = [];
  const resubscribed: Array<() => void> = [];
  const events: PurchaseEventSource = {
    start: async () => {},
    onMessage: (listener) => void messages.push(listener),
    onResubscribed: (listener) => void resubscribed.push(listener),
    close: async () => {},
  };
  return {
    events,
    announce(purchaseId: string, status: PurchaseStatus) {
      for (const listener of messages) listener(JSON.stringify({ purchaseId, status }));
    },
    resubscribe() {
      for (const listener of resubscribed) listener();
    },
  };
}

/** What a stream wrote, in order: each event's status, `:` for a keep-alive, `end`. */
function recordingSink() {
  const written: string[] = [];
  return {
    written,
    statuses: () => written.filter((entry) => entry !== ':' && entry !== 'end'),
    sink: {
      send: (sent: Purchase) => void written.push(sent.status),
      keepAlive: () => void written.push(':'),
      end: () => void written.push('end'),
    },
  };
}

/** A purchase whose status the test moves; `read` gives it as a status read would. */
function movingPurchase(purchaseId: string, status: PurchaseStatus = 'queued') {
  const state = { status };
  const read = vi.fn(async () => purchase(purchaseId, state.status));
  return { state, read, first: () => purchase(purchaseId, state.status) };
}

function streamsWith(options: Partial<PurchaseStatusStreamsOptions> = {}) {
  const fake = fakeEvents();
  const logger = pino({ level: 'silent' });
  const streams = createPurchaseStatusStreams({
    watches: createPurchaseWatches({ events: fake.events, logger }),
    logger,
    ...options,
  });
  return { streams, ...fake };
}

/** Lets pending reads and their hand-offs run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

afterEach(() => {
  vi.useRealTimers();
});

describe('createPurchaseStatusStreams', () => {
  it('sends the current status, then each change as announced, and ends after the final one', async () => {
    const { streams, announce } = streamsWith();
    const moving = movingPurchase(id(1));
    const { written, sink } = recordingSink();
    expect(streams.open(moving.first(), moving.read, sink)).not.toBeNull();
    expect(written).toEqual(['queued']);
    expect(streams.streaming()).toBe(1);

    moving.state.status = 'processing';
    announce(id(1), 'processing');
    await settle();
    expect(written).toEqual(['queued', 'processing']);

    moving.state.status = 'succeeded';
    announce(id(1), 'succeeded');
    await settle();
    expect(written).toEqual(['queued', 'processing', 'succeeded', 'end']);
    expect(streams.streaming()).toBe(0);

    // Nothing more once ended, whatever is announced.
    const reads = moving.read.mock.calls.length;
    announce(id(1), 'succeeded');
    await settle();
    expect(moving.read).toHaveBeenCalledTimes(reads);
  });

  it('answers a finished purchase with one event and ends at once, holding nothing', () => {
    const { streams } = streamsWith();
    const moving = movingPurchase(id(1), 'failed');
    const { written, sink } = recordingSink();
    streams.open(moving.first(), moving.read, sink);
    expect(written).toEqual(['failed', 'end']);
    expect(streams.streaming()).toBe(0);
    expect(moving.read).not.toHaveBeenCalled();
  });

  it('reads once right after opening, so a change announced before the stream listened is not lost', async () => {
    const { streams } = streamsWith();
    const moving = movingPurchase(id(1));
    const first = moving.first();
    // The worker started it between the stream's first read and its registration.
    moving.state.status = 'processing';
    const { written, sink } = recordingSink();
    streams.open(first, moving.read, sink);
    await settle();
    expect(written).toEqual(['queued', 'processing']);
  });

  it('sends only changes forward: not the same status again, and never back', async () => {
    const { streams, announce } = streamsWith();
    const moving = movingPurchase(id(1), 'processing');
    const { statuses, sink } = recordingSink();
    streams.open(moving.first(), moving.read, sink);
    announce(id(1), 'processing');
    await settle();
    // A read answered from Postgres alone while Redis is down says queued: not sent.
    moving.state.status = 'queued';
    announce(id(1), 'processing');
    await settle();
    expect(statuses()).toEqual(['processing']);
    expect(moving.read.mock.calls.length).toBeGreaterThanOrEqual(2);
  });

  it('reads only the announced purchase, and reads every stream again after a resubscription', async () => {
    const { streams, announce, resubscribe } = streamsWith();
    const one = movingPurchase(id(1));
    const two = movingPurchase(id(2));
    streams.open(one.first(), one.read, recordingSink().sink);
    const second = recordingSink();
    streams.open(two.first(), two.read, second.sink);
    await settle();
    one.read.mockClear();
    two.read.mockClear();

    announce(id(1), 'processing');
    await settle();
    expect(one.read).toHaveBeenCalledTimes(1);
    expect(two.read).not.toHaveBeenCalled();

    // Announced while the subscription was down: only the resubscription tells.
    two.state.status = 'succeeded';
    resubscribe();
    await settle();
    expect(second.written).toEqual(['queued', 'succeeded', 'end']);
  });

  it('sends a keep-alive comment every interval, and reads again then in case an announcement was missed', async () => {
    vi.useFakeTimers();
    const { streams } = streamsWith({ keepAliveIntervalMs: 15_000 });
    const moving = movingPurchase(id(1));
    const { written, sink } = recordingSink();
    streams.open(moving.first(), moving.read, sink);
    await vi.advanceTimersByTimeAsync(14_999);
    expect(written).toEqual(['queued']);
    await vi.advanceTimersByTimeAsync(1);
    expect(written).toEqual(['queued', ':']);

    moving.state.status = 'succeeded';
    await vi.advanceTimersByTimeAsync(15_000);
    expect(written).toEqual(['queued', ':', ':', 'succeeded', 'end']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a stream still open after maxDurationMs, and one whose client left at once, stopping its reads', async () => {
    vi.useFakeTimers();
    const { streams, announce } = streamsWith({ maxDurationMs: 60_000, keepAliveIntervalMs: 15_000 });
    const long = movingPurchase(id(1));
    const longSink = recordingSink();
    streams.open(long.first(), long.read, longSink.sink);
    const left = movingPurchase(id(2));
    const leftSink = recordingSink();
    const leaving = streams.open(left.first(), left.read, leftSink.sink)!;
    await vi.advanceTimersByTimeAsync(0);

    leaving.stop();
    expect(leftSink.written).toEqual(['queued', 'end']);
    left.read.mockClear();
    announce(id(2), 'processing');
    await vi.advanceTimersByTimeAsync(0);
    expect(left.read).not.toHaveBeenCalled();

    await vi.advanceTimersByTimeAsync(60_000);
    expect(longSink.written).toEqual(['queued', ':', ':', ':', 'end']);
    expect(streams.streaming()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('holds at most maxStreams streams and refuses the rest, sending nothing, until a place frees', () => {
    const { streams } = streamsWith({ maxStreams: 2 });
    const open = (n: number) => {
      const moving = movingPurchase(id(n));
      const recorded = recordingSink();
      return { stream: streams.open(moving.first(), moving.read, recorded.sink), recorded };
    };
    const first = open(1);
    expect(open(2).stream).not.toBeNull();
    const refused = open(3);
    expect(refused.stream).toBeNull();
    expect(refused.recorded.written).toEqual([]);

    first.stream!.stop();
    expect(open(4).stream).not.toBeNull();
    expect(streams.streaming()).toBe(2);
    streams.close();
  });

  it('ends every stream on close, and refuses new ones', () => {
    const { streams } = streamsWith();
    const sinks = [1, 2, 3].map((n) => {
      const moving = movingPurchase(id(n));
      const recorded = recordingSink();
      streams.open(moving.first(), moving.read, recorded.sink);
      return recorded;
    });
    streams.close();
    expect(sinks.map((recorded) => recorded.written)).toEqual([
      ['queued', 'end'],
      ['queued', 'end'],
      ['queued', 'end'],
    ]);
    const late = movingPurchase(id(4));
    expect(streams.open(late.first(), late.read, recordingSink().sink)).toBeNull();
    expect(streams.streaming()).toBe(0);
  });
});
