import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPurchaseOutcomeWaiter } from '../../src/api/purchase-outcome-waiter.js';
import { createPurchaseWatches } from '../../src/api/purchase-watches.js';
import { PURCHASE_EVENTS_CHANNEL } from '../../src/shared/postgres/names.js';
import { createPostgresPurchaseEvents } from '../../src/shared/postgres/purchase-events.js';
import { createTestDatabase, eventually, type TestDatabase } from '../support/services.js';
import { purchaseWith } from '../support/purchase-fixtures.js';

const logger = pino({ level: 'silent' });
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
/** A purchase with its outcome, as the status read gives it. */
const finished = (purchaseId: string) => purchaseWith(purchaseId, 'succeeded');

/** The waiter on the Postgres backend's LISTEN/NOTIFY, against the real Postgres. */
describe('the outcome waiter on Postgres LISTEN/NOTIFY', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  const announce = (purchaseId: string) =>
    database.db.raw('select pg_notify(?, ?)', [
      PURCHASE_EVENTS_CHANNEL,
      JSON.stringify({ purchaseId, status: 'succeeded' }),
    ]);
  /** The events connection's server process, as Postgres lists it. */
  const listeners = async () =>
    (
      await database.db.raw<{ rows: Array<{ pid: number }> }>(
        `select pid from pg_stat_activity where datname = current_database() and application_name = 'payonce-events'`,
      )
    ).rows.map((row) => row.pid);

  it('answers a wait from its notification, and listens again after its connection is killed', async () => {
    const events = createPostgresPurchaseEvents({ databaseUrl: database.url, logger });
    // The poll is off: only a notification, or a resubscription, can answer.
    const watches = createPurchaseWatches({ events, logger });
    const waiter = createPurchaseOutcomeWaiter({ watches, logger, pollIntervalMs: 3_600_000 });
    try {
      await watches.start();
      const read = vi.fn(async () => finished(id(1)));
      const first = waiter.waitForOutcome(id(1), { deadline: Date.now() + 10_000 }, read)!;
      await announce(id(1));
      await expect(first.outcome).resolves.toEqual(finished(id(1)));

      // The connection dies (a failover, an operator's pg_terminate_backend) while a request waits
      // and its purchase finishes: that notification is lost with the connection.
      const [pid] = await listeners();
      expect(pid).toBeDefined();
      let done = false;
      const second = waiter.waitForOutcome(id(2), { deadline: Date.now() + 10_000 }, async () =>
        done ? finished(id(2)) : null,
      )!;
      await database.db.raw('select pg_terminate_backend(?)', [pid!]);
      done = true;
      // Listening again, it reads every waiting purchase at once instead of waiting for the poll.
      await expect(second.outcome).resolves.toEqual(finished(id(2)));
      const [again] = await eventually(async () => {
        const pids = await listeners();
        return pids.length === 1 && pids[0] !== pid ? pids : undefined;
      });
      expect(again).not.toBe(pid);

      // And notifications reach it again.
      const third = waiter.waitForOutcome(id(3), { deadline: Date.now() + 10_000 }, async () => finished(id(3)))!;
      await announce(id(3));
      await expect(third.outcome).resolves.toEqual(finished(id(3)));
    } finally {
      waiter.close();
      await events.close();
    }
    // Closed: its connection is gone.
    await eventually(async () => ((await listeners()).length === 0 ? true : undefined));
  });

  it('waits for Postgres when it cannot listen yet, and closes cleanly meanwhile', async () => {
    const url = new URL(database.url);
    // Nothing listens on port 1: every attempt is refused, and the source keeps trying.
    url.port = '1';
    const events = createPostgresPurchaseEvents({ databaseUrl: url.toString(), logger });
    let settled = false;
    const started = events.start().finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    await events.close();
    await started;
  });
});
