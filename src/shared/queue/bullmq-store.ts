import { createPostgresBackend, Queue, Worker, type Processor, type QueueOptions, type WorkerOptions } from 'bullmq';
import type { RedisClient } from '../redis/connection.js';

/**
 * Where BullMQ keeps the purchase queue: in Redis (a connection and the key prefix its keys live
 * under), or in PostgreSQL through BullMQ's own PostgreSQL backend (its `bullmq` schema in
 * DATABASE_URL's database, migrated by `npm run db:migrate`). Every Queue and Worker payonce
 * makes goes through `createQueue` and `createWorker`, so the rest of the code does not care.
 */
export type BullmqStore =
  | { backend: 'redis'; connection: RedisClient; prefix: string }
  | {
      backend: 'postgres';
      databaseUrl: string;
      /** Connections each Queue or Worker's pool opens at most (a Worker adds one LISTEN connection). */
      poolMax: number;
    };

type QueueSettings = Omit<QueueOptions, 'connection' | 'prefix'>;
type WorkerSettings = Omit<WorkerOptions, 'connection' | 'prefix'>;

/** BullMQ's PostgreSQL connection options for a pool of its own; the Queue or Worker closes it. */
function postgresConnection(store: Extract<BullmqStore, { backend: 'postgres' }>) {
  return {
    connectionString: store.databaseUrl,
    max: store.poolMax,
    application_name: 'payonce-queue',
    // Fail fast when Postgres is unreachable, as payonce's own pool does (src/shared/db.ts).
    connectionTimeoutMillis: 3_000,
  };
}

/** A BullMQ Queue on `store`. Closing it closes what it opened, never the caller's Redis connection. */
export function createQueue<T>(name: string, store: BullmqStore, settings: QueueSettings = {}): Queue<T> {
  const queue =
    store.backend === 'redis'
      ? new Queue<T>(name, { ...settings, connection: store.connection, prefix: store.prefix })
      : (new Queue(
          name,
          { ...settings, connection: postgresConnection(store) },
          createPostgresBackend,
        ) as unknown as Queue<T>);
  queue.on('error', () => {
    // The connections log their own errors; without a listener Node would throw.
  });
  return queue;
}

/** A BullMQ Worker on `store`, with the same rules as `createQueue`. */
export function createWorker<T, R>(
  name: string,
  processor: Processor<T, R>,
  store: BullmqStore,
  settings: WorkerSettings,
): Worker<T, R> {
  return store.backend === 'redis'
    ? new Worker<T, R>(name, processor, { ...settings, connection: store.connection, prefix: store.prefix })
    : (new Worker(
        name,
        processor as Processor,
        { ...settings, connection: postgresConnection(store) },
        createPostgresBackend,
      ) as unknown as Worker<T, R>);
}
