import { loadConfigOrExit } from '../src/shared/config.js';
import { serveBullmqWorker } from './bullmq-worker-process.js';

/**
 * The floor of every worker here: a BullMQ worker on the same queue options that does nothing
 * with each job, on the configured backend (BullMQ on Redis, or its PostgreSQL backend). Its
 * drain rate is the ceiling for any BullMQ worker process on this machine and backend.
 */
await serveBullmqWorker(loadConfigOrExit(), async () => ({ status: 'succeeded' }));
