import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/shared/db.js';
import { createGatewayDb, createSimulatedGateway, declinesKey } from '../../src/worker/payment-gateway.js';
import { createTestDatabase, type TestDatabase } from '../support/services.js';

/**
 * The simulated gateway against a real Postgres ledger. Each gateway here has a pool of its own,
 * as two worker processes (or Lambda containers) would: what one charged, the other must see.
 */
let database: TestDatabase;
let pools: Db[];

beforeAll(async () => {
  database = await createTestDatabase();
  pools = [createGatewayDb({ DATABASE_URL: database.url }), createGatewayDb({ DATABASE_URL: database.url })];
});

afterAll(async () => {
  for (const pool of pools ?? []) await pool.destroy();
  await database?.drop();
});

/** A gateway as one worker process builds it, on pool `process` (0 or 1). */
const gatewayOf = (process: 0 | 1, options: { delayMs?: number; declineRate?: number } = {}) =>
  createSimulatedGateway({ db: pools[process]!, delayMs: options.delayMs ?? 0, declineRate: options.declineRate ?? 0 });

const ledgerOf = (purchaseIds: string[]) =>
  database.db('gateway_charges').whereIn('purchase_id', purchaseIds).orderBy('purchase_id') as Promise<
    Array<{ idempotency_key: string; purchase_id: string; amount: number; charged_at: Date }>
  >;

describe('the simulated gateway, its ledger in Postgres', () => {
  it('charges once when two processes charge the same purchases at the same time', async () => {
    const purchaseIds = Array.from({ length: 20 }, () => randomUUID());
    const [first, second] = [gatewayOf(0, { delayMs: 100 }), gatewayOf(1, { delayMs: 100 })];
    // Both processes charge every purchase at once, and the first one twice more in one batch.
    const results = await Promise.all(
      purchaseIds.flatMap((purchaseId) => [
        first.charge({ purchaseId, amount: 500 }),
        second.charge({ purchaseId, amount: 500 }),
        first.charge({ purchaseId, amount: 500 }),
      ]),
    );

    expect(results).toEqual(results.map(() => ({ approved: true })));
    const ledger = await ledgerOf(purchaseIds);
    expect(ledger.map((row) => row.purchase_id)).toEqual([...purchaseIds].sort());
    for (const row of ledger) {
      expect(row).toMatchObject({ idempotency_key: row.purchase_id, amount: 500 });
      expect(row.charged_at).toBeInstanceOf(Date);
    }
  });

  it('answers a repeated key with its first result and charges nothing new, in any process', async () => {
    const purchaseId = randomUUID();
    expect(await gatewayOf(0).charge({ purchaseId, amount: 700 })).toEqual({ approved: true });
    const [charged] = await ledgerOf([purchaseId]);

    // Another process, even one that would decline this key now, answers with the first charge.
    expect(declinesKey(purchaseId, 1)).toBe(true);
    expect(await gatewayOf(1, { declineRate: 1 }).charge({ purchaseId, amount: 700 })).toEqual({ approved: true });
    expect(await gatewayOf(1).charge({ purchaseId, amount: 700 })).toEqual({ approved: true });
    // The same key with another amount is refused, as providers refuse a reused key.
    await expect(gatewayOf(1).charge({ purchaseId, amount: 900 })).rejects.toThrow(/charged 700, not 900/);
    expect(await ledgerOf([purchaseId])).toEqual([charged]);
  });

  it('declines by the key, the same way every time, and records no charge for a decline', async () => {
    const declined = randomUUID();
    const results = [
      await gatewayOf(0, { declineRate: 1 }).charge({ purchaseId: declined, amount: 300 }),
      await gatewayOf(1, { declineRate: 1 }).charge({ purchaseId: declined, amount: 300 }),
    ];
    expect(results).toEqual([
      { approved: false, reason: 'card_declined' },
      { approved: false, reason: 'card_declined' },
    ]);
    // At a rate between 0 and 1, each key's decision is the same in every process.
    const keys = Array.from({ length: 40 }, () => randomUUID());
    const decisions = await Promise.all(
      keys.map(async (purchaseId, index) => {
        const gateway = gatewayOf(index % 2 === 0 ? 0 : 1, { declineRate: 0.5 });
        const answers = [
          await gateway.charge({ purchaseId, amount: 300 }),
          await gatewayOf(index % 2 === 0 ? 1 : 0, { declineRate: 0.5 }).charge({ purchaseId, amount: 300 }),
        ];
        expect(answers[1]).toEqual(answers[0]);
        return answers[0]!.approved;
      }),
    );
    expect(decisions).toEqual(keys.map((key) => !declinesKey(key, 0.5)));
    const approvedKeys = keys.filter((_, index) => decisions[index]);
    expect((await ledgerOf([declined, ...keys])).map((row) => row.purchase_id)).toEqual([...approvedKeys].sort());
  });

  it('charges nothing before its latency has passed (a process killed meanwhile charged nothing)', async () => {
    const purchaseId = randomUUID();
    const charging = gatewayOf(0, { delayMs: 600 }).charge({ purchaseId, amount: 100 });
    await sleep(300);
    expect(await ledgerOf([purchaseId])).toEqual([]);
    expect(await charging).toEqual({ approved: true });
    expect(await ledgerOf([purchaseId])).toHaveLength(1);
  });

  it('refuses an amount the ledger cannot hold, charging nothing', async () => {
    const purchaseId = randomUUID();
    await expect(gatewayOf(0).charge({ purchaseId, amount: 3_000_000_000 })).rejects.toBeInstanceOf(RangeError);
    await expect(gatewayOf(0).charge({ purchaseId, amount: 1.5 })).rejects.toBeInstanceOf(RangeError);
    expect(await ledgerOf([purchaseId])).toEqual([]);
  });
});
