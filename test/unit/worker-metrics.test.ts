import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../../src/worker/metrics.js';
import type { ReconcileReport } from '../../src/worker/reconciler.js';
import { sample } from '../support/prometheus.js';

/** The worker's metrics in a registry of the test's own, and its text after `use`. */
async function scrapeAfter(use: (metrics: ReturnType<typeof createWorkerMetrics>) => void): Promise<string> {
  const registry = new Registry();
  use(createWorkerMetrics(registry));
  return registry.metrics();
}

const report = (counts: Partial<Record<'requeued' | 'recorded' | 'superseded' | 'dropped', number>>, errors = 0) =>
  ({
    scanned: 0,
    alive: 0,
    requeued: Array.from({ length: counts.requeued ?? 0 }, String),
    recorded: Array.from({ length: counts.recorded ?? 0 }, String),
    superseded: Array.from({ length: counts.superseded ?? 0 }, String),
    dropped: Array.from({ length: counts.dropped ?? 0 }, String),
    errors,
  }) satisfies ReconcileReport;

describe('createWorkerMetrics', () => {
  it('shows every series at zero before anything happened', async () => {
    const text = await scrapeAfter(() => {});
    for (const series of [
      'payonce_worker_job_duration_seconds_count{outcome="succeeded"}',
      'payonce_worker_job_duration_seconds_count{outcome="error"}',
      'payonce_worker_purchases_total{outcome="succeeded"}',
      'payonce_worker_purchases_total{outcome="failed",reason="card_declined"}',
      'payonce_worker_purchases_total{outcome="failed",reason="other"}',
      'payonce_worker_failed_attempts_total{result="retry"}',
      'payonce_worker_failed_attempts_total{result="malformed"}',
      'payonce_worker_reconciled_purchases_total{action="requeued"}',
      'payonce_worker_reconcile_errors_total',
      'payonce_worker_reconcile_runs_total{result="failed"}',
    ]) {
      expect(sample(text, series), series).toBe(0);
    }
  });

  it('keeps labels to a fixed set: a reason of its own is `other`, never a new series', async () => {
    const text = await scrapeAfter((metrics) => {
      metrics.purchaseRecorded('succeeded', null);
      metrics.purchaseRecorded('failed', 'card_declined');
      metrics.purchaseRecorded('failed', 'insufficient funds on card 4242');
      metrics.purchaseRecorded('failed', null);
      metrics.stepEnded('succeeded', 0.2);
      metrics.stepEnded('succeeded', 0.4);
      metrics.attemptFailed('retry');
      metrics.attemptFailed('retry');
      metrics.attemptFailed('unrecorded');
    });
    expect(sample(text, 'payonce_worker_purchases_total{outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'payonce_worker_purchases_total{outcome="failed",reason="card_declined"}')).toBe(1);
    expect(sample(text, 'payonce_worker_purchases_total{outcome="failed",reason="other"}')).toBe(2);
    expect(text).not.toContain('4242');
    expect(sample(text, 'payonce_worker_job_duration_seconds_count{outcome="succeeded"}')).toBe(2);
    expect(sample(text, 'payonce_worker_job_duration_seconds_sum{outcome="succeeded"}')).toBeCloseTo(0.6);
    expect(sample(text, 'payonce_worker_job_duration_seconds_bucket{le="0.25",outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'payonce_worker_failed_attempts_total{result="retry"}')).toBe(2);
    expect(sample(text, 'payonce_worker_failed_attempts_total{result="unrecorded"}')).toBe(1);
  });

  it("adds up the reconciler's reports and counts failed runs", async () => {
    const text = await scrapeAfter((metrics) => {
      metrics.reconciled(report({ requeued: 2, dropped: 1 }, 1));
      metrics.reconciled(report({ requeued: 1, recorded: 3, superseded: 1 }));
      metrics.reconciled(null);
    });
    expect(sample(text, 'payonce_worker_reconciled_purchases_total{action="requeued"}')).toBe(3);
    expect(sample(text, 'payonce_worker_reconciled_purchases_total{action="recorded"}')).toBe(3);
    expect(sample(text, 'payonce_worker_reconciled_purchases_total{action="superseded"}')).toBe(1);
    expect(sample(text, 'payonce_worker_reconciled_purchases_total{action="dropped"}')).toBe(1);
    expect(sample(text, 'payonce_worker_reconcile_errors_total')).toBe(1);
    expect(sample(text, 'payonce_worker_reconcile_runs_total{result="completed"}')).toBe(2);
    expect(sample(text, 'payonce_worker_reconcile_runs_total{result="failed"}')).toBe(1);
  });
});
