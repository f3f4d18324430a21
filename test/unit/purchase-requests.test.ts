import { describe, expect, it } from 'vitest';
import { MAX_WAIT_SECONDS, preferredWaitSeconds } from '../../src/api/routes/purchases.js';
import { idempotencyKeyFor, purchaseFingerprint } from '../../src/shared/purchase/idempotency.js';

describe('preferredWaitSeconds (RFC 7240 wait preference)', () => {
  it.each([
    [undefined, 0],
    ['', 0],
    ['wait=5', 5],
    ['WAIT = 7', 7],
    ['respond-async, wait=10', 10],
    ['wait=3; foo=bar', 3],
    ['wait="4"', 4],
    ['wait=0', 0],
    [`wait=${MAX_WAIT_SECONDS + 100}`, MAX_WAIT_SECONDS],
    ['wait=-1', 0],
    ['wait=1.5', 0],
    ['wait=abc', 0],
    ['return=minimal', 0],
  ])('%j -> %d', (header, expected) => {
    expect(preferredWaitSeconds(header)).toBe(expected);
  });

  it('caps the wait at a lower maximum when the host gives one (Lambda)', () => {
    expect(preferredWaitSeconds(`wait=${MAX_WAIT_SECONDS}`, 25)).toBe(25);
    expect(preferredWaitSeconds('wait=10', 25)).toBe(10);
    expect(preferredWaitSeconds('wait=abc', 25)).toBe(0);
  });
});

describe('idempotency keys', () => {
  it('scopes a client key to its user', () => {
    const a = idempotencyKeyFor({ userId: 1, productId: 9, headerKey: 'k-1' });
    const b = idempotencyKeyFor({ userId: 2, productId: 9, headerKey: 'k-1' });
    expect(a).not.toBe(b);
    // The product does not change a client key: a different body under it is a conflict.
    expect(idempotencyKeyFor({ userId: 1, productId: 10, headerKey: 'k-1' })).toBe(a);
  });

  it('derives one key per (user, product) without a header', () => {
    expect(idempotencyKeyFor({ userId: 1, productId: 9 })).toBe(idempotencyKeyFor({ userId: 1, productId: 9 }));
    expect(idempotencyKeyFor({ userId: 1, productId: 9 })).not.toBe(idempotencyKeyFor({ userId: 1, productId: 8 }));
    // A client key can never collide with a derived one.
    expect(idempotencyKeyFor({ userId: 1, productId: 9, headerKey: 'product:9' })).not.toBe(
      idempotencyKeyFor({ userId: 1, productId: 9 }),
    );
  });

  it('fingerprints the body', () => {
    expect(purchaseFingerprint({ userId: 1, productId: 2 })).not.toBe(purchaseFingerprint({ userId: 1, productId: 3 }));
  });
});
