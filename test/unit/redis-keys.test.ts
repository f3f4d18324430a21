import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bullmqPrefix, redisKeys } from '../../src/shared/redis/keys.js';
import { runPerSlot } from '../../src/shared/redis/slot-groups.js';

const purchaseId = '00000000-0000-4000-8000-000000000001';

describe('the Redis key layout', () => {
  it('keeps the single-Redis names as they always were, so existing deployments keep their keys', () => {
    const keys = redisKeys('payonce');
    expect(keys.claim('user:1:key:{a}')).toBe('payonce:idem:user:1:key:{a}');
    expect(keys.purchaseState({ purchaseId, idempotencyKey: 'user:1:product:2' })).toBe(
      `payonce:purchase:${purchaseId}`,
    );
    expect(keys.purchaseEvents).toBe('payonce:purchase-events');
    expect(keys.sqsSentJob('abc')).toBe('payonce:sqs-dedup:abc');
    expect(keys.bullmq).toBe('payonce:bull');
    expect(keys.idempotencyKeyOf(keys.claim('user:1:key:x:y'))).toBe('user:1:key:x:y');
  });

  it("on a cluster, puts a purchase's claim and state in one slot, whatever its key holds", () => {
    const keys = redisKeys('payonce', { cluster: true });
    const claim = keys.claim('user:1:product:2');
    expect(claim).toMatch(/^payonce:idem:\{[0-9a-f]{16}\}:user:1:product:2$/);
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.uuid(), (idempotencyKey, id) => {
        const claimKey = keys.claim(idempotencyKey);
        const stateKey = keys.purchaseState({ purchaseId: id, idempotencyKey });
        expect(calculateSlot(stateKey)).toBe(calculateSlot(claimKey));
        expect(keys.idempotencyKeyOf(claimKey)).toBe(idempotencyKey);
      }),
      { numRuns: 2_000 },
    );
    // Braces in the key cannot move either key to a slot of its own.
    for (const idempotencyKey of ['}', '{', '{}', '}{', 'a}b', '{a}', '']) {
      const stateKey = keys.purchaseState({ purchaseId, idempotencyKey });
      expect(calculateSlot(stateKey), idempotencyKey).toBe(calculateSlot(keys.claim(idempotencyKey)));
    }
  });

  it("on a cluster, spreads purchases over the slots, and keeps a BullMQ queue's keys in one", () => {
    const keys = redisKeys('payonce', { cluster: true });
    const slots = new Set(Array.from({ length: 200 }, (_, n) => calculateSlot(keys.claim(`user:${n}:product:1`))));
    expect(slots.size).toBeGreaterThan(190);
    expect(keys.bullmq).toBe('{payonce}:bull');
    expect(bullmqPrefix('payonce', { cluster: true })).toBe('{payonce}:bull');
    const queueKeys = ['wait', 'active', 'meta', 'de:user:1:product:2', '1234'].map(
      (suffix) => `${keys.bullmq}:q:${suffix}`,
    );
    expect(new Set(queueKeys.map(calculateSlot)).size).toBe(1);
  });
});

describe('running a batched script per hash slot', () => {
  const keys = redisKeys('p', { cluster: true });
  const items = ['k1', 'k2', 'k1', 'k3', 'k2'];

  it('makes one call for the whole batch on a single Redis', async () => {
    const calls: string[][] = [];
    const results = await runPerSlot(items, { cluster: false, slotKeyOf: keys.claim }, async (group) => {
      calls.push([...group]);
      return group.map((item) => `${item}!`);
    });
    expect(calls).toEqual([items]);
    expect(results).toEqual(items.map((item) => `${item}!`));
  });

  it('on a cluster, makes one call per slot, keeps the order within each, and answers in the batch order', async () => {
    const calls: string[][] = [];
    const results = await runPerSlot(items, { cluster: true, slotKeyOf: keys.claim }, async (group) => {
      calls.push([...group]);
      return group.map((item, position) => `${item}#${position}`);
    });
    expect(calls.sort()).toEqual([['k1', 'k1'], ['k2', 'k2'], ['k3']]);
    expect(results).toEqual(['k1#0', 'k2#0', 'k1#1', 'k3#0', 'k2#1']);
  });

  it('on a cluster, fails only the items of a slot whose call failed', async () => {
    const results = await runPerSlot(items, { cluster: true, slotKeyOf: keys.claim }, async (group) => {
      if (group[0] === 'k2') throw new Error('node down');
      return group.map(() => 'ok');
    });
    expect(results.map((result) => (result instanceof Error ? result.message : result))).toEqual([
      'ok',
      'node down',
      'ok',
      'ok',
      'node down',
    ]);
  });
});
