import { createQueue, type BullmqStore } from '../../shared/queue/bullmq-store.js';
import type { JobInspector, JobState } from '../reconciler.js';

/**
 * The reconciler's view of the BullMQ queue: a purchase's job is found by its id, which is the
 * purchase id. Close it with `close()`; a Redis connection stays its owner's.
 */
export function createBullmqJobInspector(options: { store: BullmqStore; queueName: string }) {
  const queue = createQueue(options.queueName, options.store);

  const inspector: JobInspector & { close(): Promise<void> } = {
    async jobState(purchaseId: string): Promise<JobState> {
      const job = await queue.getJob(purchaseId);
      if (!job) return 'missing';
      const state = await job.getState();
      // Completed without a payment in Postgres (the reconciler only asks about those) is as
      // good as failed: the job is over and its outcome is not recorded.
      if (state === 'failed' || state === 'completed') return 'failed';
      return state === 'unknown' ? 'missing' : 'alive';
    },
    async discardFailed(purchaseId: string): Promise<void> {
      await (await queue.getJob(purchaseId))?.remove();
    },
    close: () => queue.close(),
  };
  return inspector;
}
