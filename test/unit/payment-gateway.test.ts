import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { declinesKey } from '../../src/worker/payment-gateway.js';

const keys = Array.from({ length: 20_000 }, () => randomUUID());
const declinedShare = (rate: number) => keys.filter((key) => declinesKey(key, rate)).length / keys.length;

describe("the simulated gateway's decline decision", () => {
  it('declines nothing at rate 0 and everything at rate 1', () => {
    expect(declinedShare(0)).toBe(0);
    expect(declinedShare(1)).toBe(1);
  });

  it('declines about the configured fraction of keys', () => {
    // 20 000 keys: a standard deviation of about 0.3 percentage points at these rates.
    for (const rate of [0.1, 0.3, 0.5]) expect(Math.abs(declinedShare(rate) - rate)).toBeLessThan(0.015);
  });

  it('gives a key the same decision every time, so a repeated charge is answered alike', () => {
    const first = keys.slice(0, 1_000).map((key) => declinesKey(key, 0.5));
    const again = keys.slice(0, 1_000).map((key) => declinesKey(key, 0.5));
    expect(again).toEqual(first);
    expect(new Set(first).size).toBe(2);
  });

  it('declines at a lower rate only keys it also declines at a higher one', () => {
    for (const key of keys.slice(0, 2_000)) {
      if (declinesKey(key, 0.2)) expect(declinesKey(key, 0.6)).toBe(true);
    }
  });
});
