import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobInspector, JobState } from '../reconciler.js';

/**
 * The reconciler's view of the BullMQ queue: a purchase's job is found by its id, which is the
 * purchase id. Close it with `close()`; the connection stays its owner's.
 */
export function createBullmqJobInspector(options: { connection: Redis; queueName: string; prefix: string }) {
  const queue = new Queue(options.queueName, { connection: options.connection, prefix: options.prefix });
  queue.on('error', () => {
    // The shared connection logs its own errors; without a listener Node would throw.
  });

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
