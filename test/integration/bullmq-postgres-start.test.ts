import type { Job, Queue, Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createQueue, createWorker, type BullmqStore } from '../../src/shared/queue/bullmq-store.js';
import { createTestDatabase, eventually, randomSuffix, type TestDatabase } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** Part of the one query BullMQ's PostgreSQL backend runs while it starts (its schema check). */
const START_UP_CHECK = 'min_client_version';

/**
 * BullMQ's PostgreSQL backend started over a link that breaks at the worst moment: while its
 * start-up check is on the wire (src/shared/queue/bullmq-store.ts). The process must not crash
 * (an uncaught error here fails the run), and the Queue or Worker must work once Postgres is
 * back rather than repeat the start's failure for good.
 */
describe("BullMQ's PostgreSQL backend when its start is cut", () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let store: Extract<BullmqStore, { backend: 'postgres' }>;
  const opened: Array<Queue | Worker> = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    proxy = await startTcpProxy({ port: Number(new URL(database.url).port || 5432) });
    store = { backend: 'postgres', databaseUrl: proxy.rewrite(database.url), poolMax: 2 };
  });

  afterEach(async () => {
    proxy.restore();
    await Promise.all(opened.splice(0).map((closable) => closable.close()));
  });

  afterAll(async () => {
    await proxy?.close();
    await database?.drop();
  });

  /** Lets the start-up check reach the wire, then resets every connection and refuses new ones for a while. */
  async function cutDuringStart(open: () => Queue | Worker): Promise<void> {
    const sprung = proxy.trap(START_UP_CHECK, 'hold');
    opened.push(open());
    await sprung;
    proxy.cut({ mode: 'reset' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    proxy.restore();
  }

  it('a Queue whose start was cut answers once Postgres is back', async () => {
    const name = `start_${randomSuffix()}`;
    let queue!: Queue;
    await cutDuringStart(() => (queue = createQueue(name, store)));

    const counts = await eventually(() => queue.getJobCounts('waiting'), { what: 'the queue to answer' });
    expect(counts.waiting).toBe(0);
    await queue.add('job', {}, { jobId: 'one' });
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
  });

  it('a Worker whose start was cut takes jobs once Postgres is back', async () => {
    const name = `start_${randomSuffix()}`;
    const processed: string[] = [];
    await cutDuringStart(() => {
      const worker = createWorker(
        name,
        async (job: Job) => {
          processed.push(job.id ?? '');
        },
        store,
        { runRetryDelay: 100 },
      );
      // Its failed fetches while the link is down; BullMQ would print them without a listener.
      worker.on('error', () => {});
      return worker;
    });
    const producer = createQueue(name, { ...store, databaseUrl: database.url });
    opened.push(producer);
    await producer.add('job', {}, { jobId: 'after-the-cut' });

    await eventually(() => (processed.includes('after-the-cut') ? true : undefined), {
      what: 'the worker to take the job',
    });
  });
});
