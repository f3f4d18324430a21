import { describe, expect, it } from 'vitest';
import { verifyBurst, type BurstResponse, type PaymentRecord } from '../../scripts/burst/verify.js';
import { percentile, summarize } from '../../scripts/burst/stats.js';

const pairs = [
  { userId: 1, productId: 10 },
  { userId: 2, productId: 10 },
];
const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const X = 'cccccccc-0000-4000-8000-000000000003';

const cleanResponses: BurstResponse[] = [
  { pair: 0, status: 202, purchaseId: A },
  { pair: 0, status: 204, purchaseId: A },
  { pair: 1, status: 204, purchaseId: B },
  { pair: 1, status: 202, purchaseId: B },
];
const cleanPayments: PaymentRecord[] = [
  { purchaseId: A, userId: 1, productId: 10, status: 'succeeded' },
  { purchaseId: B, userId: 2, productId: 10, status: 'failed' },
];

const kinds = (responses: BurstResponse[], payments: PaymentRecord[]) =>
  verifyBurst({ pairs, responses, payments }).map((violation) => violation.kind);

describe('verifyBurst', () => {
  it('passes a clean run', () => {
    expect(kinds(cleanResponses, cleanPayments)).toEqual([]);
  });

  it('catches a planted duplicate payment', () => {
    const planted = [...cleanPayments, { purchaseId: X, userId: 1, productId: 10, status: 'succeeded' }];
    expect(kinds(cleanResponses, planted)).toEqual(['charged_twice', 'payment_without_acceptance']);
  });

  it('catches a planted lost payment', () => {
    expect(kinds(cleanResponses, cleanPayments.slice(1))).toEqual(['lost_payment']);
  });

  it('catches a pair accepted twice, a duplicate pointing elsewhere and server errors', () => {
    const responses: BurstResponse[] = [
      ...cleanResponses,
      { pair: 0, status: 202, purchaseId: X },
      { pair: 1, status: 204, purchaseId: A },
      { pair: 1, status: 503, purchaseId: null },
    ];
    const payments = [...cleanPayments, { purchaseId: X, userId: 1, productId: 10, status: 'succeeded' }];
    expect(kinds(responses, payments).sort()).toEqual(
      ['accepted_twice', 'charged_twice', 'duplicate_points_elsewhere', 'server_error'].sort(),
    );
  });

  it('catches a pair that was never accepted', () => {
    const responses = cleanResponses.filter((response) => response.pair === 0);
    expect(kinds(responses, cleanPayments.slice(0, 1))).toEqual(['not_accepted']);
  });
});

describe('latency summaries', () => {
  it('uses nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(summarize([3, 1, 2])).toMatchObject({ count: 3, p50: 2, max: 3, mean: 2 });
    expect(summarize([])).toMatchObject({ count: 0, p99: 0 });
  });
});
