import { Counter, Histogram, type Registry } from 'prom-client';
import { FAILURE_REASONS } from '../shared/purchase/purchase.js';
import { STEP_OUTCOMES, type PurchaseStepMetrics } from './process-purchase.js';
import { FAILED_ATTEMPTS, type AttemptMetrics } from './purchase-attempt.js';
import type { ReconcilerMetrics } from './reconciler.js';

/**
 * What the worker counts, for every transport alike (the BullMQ worker, the SQS poller): each
 * consumer declares the part it reports to (PurchaseStepMetrics, AttemptMetrics,
 * ReconcilerMetrics) and gets it as a dependency.
 */
export type WorkerMetrics = PurchaseStepMetrics & AttemptMetrics & ReconcilerMetrics;

/**
 * The failure reasons the purchase step records, each a label value; any other reason a gateway
 * gives is `other`, so a gateway's free text cannot grow the series. (`retries_exhausted` and
 * `superseded_by_retry` are recorded elsewhere and counted there: failed attempts, reconciled.)
 */
const STEP_FAILURE_REASONS = [FAILURE_REASONS.CARD_DECLINED, FAILURE_REASONS.REFERENCE_GONE, 'other'] as const;
const KNOWN_REASONS: ReadonlySet<string> = new Set(STEP_FAILURE_REASONS);

const RECONCILE_ACTIONS = ['requeued', 'recorded', 'superseded', 'dropped'] as const;

/**
 * The worker's Prometheus metrics, registered in `registry` (the worker's HTTP endpoint serves
 * it). Labels take a few fixed values each (never a purchase id), and every series exists from
 * the start, so `rate()` sees its first increase and the dashboard shows zeros, not gaps.
 */
export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  const registers = [registry];
  const jobDuration = new Histogram({
    name: 'payonce_worker_job_duration_seconds',
    help: `Time one run of the purchase step took (the gateway's charge included), by outcome: ${STEP_OUTCOMES.join(', ')}.`,
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const purchases = new Counter({
    name: 'payonce_worker_purchases_total',
    help: 'Purchase outcomes the purchase step recorded, by outcome (succeeded, failed) and failure reason.',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  });
  const failedAttempts = new Counter({
    name: 'payonce_worker_failed_attempts_total',
    help:
      'Failed runs of the purchase step by what became of their job: retry (back to the queue), permanent, ' +
      'exhausted (recorded as retries_exhausted), unrecorded (left for the reconciler), malformed (dropped).',
    labelNames: ['result'] as const,
    registers,
  });
  const reconciled = new Counter({
    name: 'payonce_worker_reconciled_purchases_total',
    help: `Accepted purchases the reconciler completed, by action: ${RECONCILE_ACTIONS.join(', ')}.`,
    labelNames: ['action'] as const,
    registers,
  });
  const reconcileErrors = new Counter({
    name: 'payonce_worker_reconcile_errors_total',
    help: 'Purchases a reconciler run could not handle (they are looked at again next run).',
    registers,
  });
  const reconcileRuns = new Counter({
    name: 'payonce_worker_reconcile_runs_total',
    help: 'Reconciler runs, by result: completed, failed (the run itself, such as Postgres down).',
    labelNames: ['result'] as const,
    registers,
  });

  for (const outcome of STEP_OUTCOMES) jobDuration.zero({ outcome });
  purchases.inc({ outcome: 'succeeded' }, 0);
  for (const reason of STEP_FAILURE_REASONS) purchases.inc({ outcome: 'failed', reason }, 0);
  for (const result of [...FAILED_ATTEMPTS, 'malformed']) failedAttempts.inc({ result }, 0);
  for (const action of RECONCILE_ACTIONS) reconciled.inc({ action }, 0);
  reconcileErrors.inc(0);
  for (const result of ['completed', 'failed']) reconcileRuns.inc({ result }, 0);

  return {
    stepEnded: (outcome, seconds) => jobDuration.observe({ outcome }, seconds),
    purchaseRecorded: (status, failureReason) =>
      purchases.inc(
        status === 'succeeded'
          ? { outcome: status }
          : {
              outcome: status,
              reason: failureReason !== null && KNOWN_REASONS.has(failureReason) ? failureReason : 'other',
            },
      ),
    attemptFailed: (result) => failedAttempts.inc({ result }),
    reconciled: (report) => {
      if (!report) {
        reconcileRuns.inc({ result: 'failed' });
        return;
      }
      reconcileRuns.inc({ result: 'completed' });
      for (const action of RECONCILE_ACTIONS) reconciled.inc({ action }, report[action].length);
      reconcileErrors.inc(report.errors);
    },
  };
}
