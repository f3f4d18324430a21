import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * The worker baseline: a BullMQ worker on the same queue options that does nothing with each
 * job. Its drain rate is the ceiling for any BullMQ worker process here.
 */
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const worker = new Worker(process.env.QUEUE_NAME ?? 'purchases', async () => ({ status: 'succeeded' }), {
  connection,
  prefix: `${process.env.REDIS_KEY_PREFIX ?? 'payonce'}:bull`,
  concurrency: Number(process.env.WORKER_CONCURRENCY ?? 50),
});
worker.on('error', () => {});
await worker.waitUntilReady();
console.log('worker started');
process.on(
  'SIGTERM',
  () =>
    void worker
      .close()
      .then(() => connection.quit())
      .then(() => process.exit(0)),
);
