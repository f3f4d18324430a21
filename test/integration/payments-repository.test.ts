import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPaymentsRepository, ReferenceGoneError } from '../../src/shared/purchase/payments-repository.js';
import type { PurchaseJob } from '../../src/shared/purchase/purchase.js';
import { createTestDatabase, seedUserAndProduct, type TestDatabase } from '../support/services.js';

let database: TestDatabase;
let ids: { userId: number; productId: number };

beforeAll(async () => {
  database = await createTestDatabase();
  ids = await seedUserAndProduct(database.db);
});
afterAll(() => database?.drop());

const job = (n: number): PurchaseJob => ({
  purchaseId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  userId: ids.userId,
  productId: ids.productId,
  amount: 1999,
  idempotencyKey: `user:${ids.userId}:product:${ids.productId}`,
  acceptedAt: '2026-11-28T10:00:00.000Z',
});

describe('payments repository on a real Postgres', () => {
  it('writes one row however many times, and at once, a purchase is recorded', async () => {
    const repo = createPaymentsRepository({ db: database.db });
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        repo.recordPayment(
          job(1),
          n % 2 ? { status: 'failed', failureReason: 'card_declined' } : { status: 'succeeded', failureReason: null },
        ),
      ),
    );
    const rows = await database.db('payments').where({ id: job(1).purchaseId });
    expect(rows).toHaveLength(1);
    // Every caller sees the single outcome that won.
    for (const outcome of outcomes) expect(outcome.status).toBe(rows[0].status);
    expect(outcomes[0]).toMatchObject({
      purchaseId: job(1).purchaseId,
      amount: 1999,
      createdAt: new Date(job(1).acceptedAt),
    });
  });

  it('finds a written payment and nothing for an unknown id', async () => {
    const repo = createPaymentsRepository({ db: database.db });
    await repo.recordPayment(job(2), { status: 'failed', failureReason: 'card_declined' });
    expect(await repo.findPayment(job(2).purchaseId)).toMatchObject({
      status: 'failed',
      failureReason: 'card_declined',
    });
    expect(await repo.findPayment(job(3).purchaseId)).toBeNull();
  });

  it('refuses rows that break the schema rules', async () => {
    const { db } = database;
    const base = { user_id: ids.userId, product_id: ids.productId, idempotency_key: 'k', accepted_at: new Date() };
    await expect(
      db('payments').insert({ ...base, id: job(10).purchaseId, amount: -1, status: 'succeeded' }),
    ).rejects.toThrow(/amount/);
    await expect(
      db('payments').insert({ ...base, id: job(11).purchaseId, amount: 1, status: 'refunded' }),
    ).rejects.toThrow(/status/);
    await expect(
      db('payments').insert({ ...base, id: job(12).purchaseId, amount: 1, status: 'failed' }),
    ).rejects.toThrow(/reason/);
    await expect(
      db('payments').insert({ ...base, id: job(13).purchaseId, amount: 1, status: 'succeeded', user_id: 999999 }),
    ).rejects.toThrow(/foreign key/);
  });

  it('writes concurrent outcomes in one multi-row statement, each caller getting its own row', async () => {
    const repo = createPaymentsRepository({ db: database.db });
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => statements.push(query.sql);
    database.db.on('query', onQuery);
    try {
      const jobs = Array.from({ length: 30 }, (_, n) => job(100 + n));
      const results = await Promise.all(
        jobs.map((j) => repo.recordPayment(j, { status: 'succeeded', failureReason: null })),
      );
      expect(results.map((r) => r.purchaseId)).toEqual(jobs.map((j) => j.purchaseId));
      // One statement for the 30 (it also writes their webhook events: see outbox.ts).
      expect(statements.filter((sql) => /insert into payments/.test(sql))).toHaveLength(1);
      const found = await Promise.all(jobs.map((j) => repo.findPayment(j.purchaseId)));
      expect(found.every((row) => row?.status === 'succeeded')).toBe(true);
      expect(statements.filter((sql) => sql.startsWith('select'))).toHaveLength(1);
    } finally {
      database.db.off('query', onQuery);
    }
  });

  it('fails only the purchase whose user vanished when it shares a statement with others', async () => {
    const repo = createPaymentsRepository({ db: database.db });
    const orphan = { ...job(200), userId: 1_999_999_999 };
    const results = await Promise.allSettled([
      repo.recordPayment(job(201), { status: 'succeeded', failureReason: null }),
      repo.recordPayment(orphan, { status: 'succeeded', failureReason: null }),
      repo.recordPayment(job(202), { status: 'failed', failureReason: 'card_declined' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (results[1] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(ReferenceGoneError);
    expect(reason.cause).toMatchObject({ code: '23503' });
    expect(await database.db('payments').whereIn('id', [job(201).purchaseId, job(202).purchaseId])).toHaveLength(2);
  });
});
