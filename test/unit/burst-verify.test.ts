import { describe, expect, it } from 'vitest';
import { verifyBurst, type BurstResponse, type ChargeRecord, type PaymentRecord } from '../../scripts/burst/verify.js';
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
  { purchaseId: A, userId: 1, productId: 10, status: 'succeeded', amount: 100 },
  { purchaseId: B, userId: 2, productId: 10, status: 'failed', amount: 100 },
];
/** The gateway charged the succeeded payment, and not the declined one. */
const cleanCharges: ChargeRecord[] = [{ purchaseId: A, amount: 100 }];
const duplicatePayment: PaymentRecord = { purchaseId: X, userId: 1, productId: 10, status: 'succeeded', amount: 100 };

const kinds = (responses: BurstResponse[], payments: PaymentRecord[], charges: ChargeRecord[] = cleanCharges) =>
  verifyBurst({ pairs, responses, payments, charges }).map((violation) => violation.kind);

describe('verifyBurst', () => {
  it('passes a clean run', () => {
    expect(kinds(cleanResponses, cleanPayments)).toEqual([]);
  });

  it('catches a planted duplicate payment, in payments and at the gateway', () => {
    const planted = [...cleanPayments, duplicatePayment];
    expect(kinds(cleanResponses, planted, [...cleanCharges, { purchaseId: X, amount: 100 }])).toEqual([
      'charged_twice',
      'payment_without_acceptance',
      'charged_twice',
    ]);
  });

  it('catches a planted lost payment', () => {
    expect(kinds(cleanResponses, cleanPayments.slice(1), [])).toEqual(['lost_payment']);
  });

  it('catches a second gateway charge of a purchase that has one payment row', () => {
    // What a redelivery to another process did with a gateway that remembered keys in memory.
    expect(kinds(cleanResponses, cleanPayments, [...cleanCharges, { purchaseId: A, amount: 100 }])).toEqual([
      'charged_twice',
    ]);
  });

  it('catches a charge for a declined purchase or a duplicate, a wrong amount and a payment never charged', () => {
    const declinedCharged = [...cleanCharges, { purchaseId: B, amount: 100 }];
    expect(kinds(cleanResponses, cleanPayments, declinedCharged)).toEqual(['charged_without_payment']);
    // A duplicate that was charged under a purchase id of its own, never written.
    expect(kinds(cleanResponses, cleanPayments, [...cleanCharges, { purchaseId: X, amount: 100 }])).toEqual([
      'charged_without_payment',
    ]);
    expect(kinds(cleanResponses, cleanPayments, [{ purchaseId: A, amount: 150 }])).toEqual(['charged_wrong_amount']);
    expect(kinds(cleanResponses, cleanPayments, [])).toEqual(['payment_not_charged']);
  });

  it('catches a pair accepted twice, a duplicate pointing elsewhere and server errors', () => {
    const responses: BurstResponse[] = [
      ...cleanResponses,
      { pair: 0, status: 202, purchaseId: X },
      { pair: 1, status: 204, purchaseId: A },
      { pair: 1, status: 503, purchaseId: null },
    ];
    const payments = [...cleanPayments, duplicatePayment];
    const charges = [...cleanCharges, { purchaseId: X, amount: 100 }];
    expect(kinds(responses, payments, charges).sort()).toEqual(
      ['accepted_twice', 'charged_twice', 'charged_twice', 'duplicate_points_elsewhere', 'server_error'].sort(),
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
