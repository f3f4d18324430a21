import { createHash } from 'node:crypto';

/** How long SQS FIFO remembers a deduplication id (fixed by SQS, not configurable). */
export const SQS_DEDUPLICATION_WINDOW_SECONDS = 300;

/**
 * The MessageDeduplicationId for an idempotency key. SQS allows at most 128 characters from a
 * restricted set, and keys carry client-chosen text: a SHA-256 hex digest fits both rules.
 */
export function sqsDeduplicationId(idempotencyKey: string): string {
  return createHash('sha256').update(idempotencyKey).digest('hex');
}
