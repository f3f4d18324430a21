import { loadRedisConfigOrExit, serveBullmqWorker } from './bullmq-worker-process.js';

/**
 * The floor of every worker here: a BullMQ worker on the same queue options that does nothing
 * with each job. Its drain rate is the ceiling for any BullMQ worker process on this machine.
 */
await serveBullmqWorker(loadRedisConfigOrExit(), async () => ({ status: 'succeeded' }));
