import { createPostgresBackend, Queue, Worker, type Processor, type QueueOptions, type WorkerOptions } from 'bullmq';
import pg from 'pg';
import { BULLMQ_SCHEMA } from '../postgres/names.js';
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

/**
 * The pg.Pool BullMQ's PostgreSQL backend runs on, built here rather than by BullMQ for one
 * reason: a client checked out of a pg.Pool has no 'error' listener, and BullMQ checks one out
 * while it starts (its schema check). A connection reset at that moment would then be thrown as
 * an uncaught exception and take the whole process down (seen: the key-lifetime fault test,
 * about one run in three). Here every client carries a listener; the query that was running
 * still fails, the pool discards the broken client, and BullMQ tries again as it does for any
 * failed query. With a pool of its caller's, BullMQ takes a Worker's LISTEN connection from it
 * (hence one more place) and leaves ending the pool to the caller (`endPoolAfterClose`).
 */
function createQueuePool(store: Extract<BullmqStore, { backend: 'postgres' }>, extra: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: store.databaseUrl,
    max: store.poolMax + extra,
    application_name: 'payonce-queue',
    // BullMQ's SQL names its tables unqualified; it pins this itself only on pools it builds.
    options: `-c search_path=${pg.escapeIdentifier(BULLMQ_SCHEMA)}`,
    // Fail fast when Postgres is unreachable, as payonce's own pool does (src/shared/db.ts).
    connectionTimeoutMillis: 3_000,
    // A silently dropped LISTEN connection is noticed and rebuilt (BullMQ asks for this).
    keepAlive: true,
  });
  pool.on('connect', (client) => {
    client.on('error', () => {
      // The running query fails with this error and the pool drops the client; nothing to add.
    });
  });
  return pool;
}

/**
 * BullMQ's PostgreSQL backend, made to get over a failed start. BullMQ 6.7 (6.7.6 too) memoizes
 * its start-up check even when it fails, on the connection and on the backend: one refused or
 * reset connection at that moment, and every later query of that Queue or Worker fails with the
 * same error, for good: a worker started while Postgres was away would never take a job (seen
 * in the key-lifetime fault test). Upstream fixed the same mistake for its LISTEN connection
 * (taskforcesh/bullmq#4781). Until it does for this one, a failed start is forgotten so that
 * the next query (a Worker retries every `runRetryDelay`) starts again. This reaches into one
 * private field on each; test/integration/bullmq-postgres-start.test.ts fails if an upgrade
 * renames it, and this can go once BullMQ forgets a failed start itself.
 */
const createRecoveringPostgresBackend: typeof createPostgresBackend = (name, opts, factoryOptions) => {
  const backend = createPostgresBackend(name, opts, factoryOptions);
  forgetFailedStart(backend.connection);
  forgetFailedStart(backend);
  return backend;
};

function forgetFailedStart(target: { waitUntilReady(): Promise<void> }): void {
  const memo = target as unknown as { readyPromise?: Promise<void> };
  const waitUntilReady = target.waitUntilReady.bind(target);
  target.waitUntilReady = () => {
    const ready = waitUntilReady();
    const remembered = memo.readyPromise;
    ready.catch(() => {
      if (memo.readyPromise === remembered) memo.readyPromise = undefined;
    });
    return ready;
  };
}

/** Makes `closable.close()` end `pool` once BullMQ has closed, which it does not do for a pool it was given. */
function endPoolAfterClose<T extends { close(...args: never[]): Promise<void> }>(closable: T, pool: pg.Pool): T {
  const close = closable.close.bind(closable);
  let ending: Promise<void> | undefined;
  closable.close = async (...args: never[]) => {
    await close(...args);
    ending ??= pool.end();
    await ending;
  };
  return closable;
}

/** A BullMQ Queue on `store`. Closing it closes what it opened, never the caller's Redis connection. */
export function createQueue<T>(name: string, store: BullmqStore, settings: QueueSettings = {}): Queue<T> {
  const queue =
    store.backend === 'redis'
      ? new Queue<T>(name, { ...settings, connection: store.connection, prefix: store.prefix })
      : postgresQueue<T>(name, store, settings);
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
    : postgresWorker(name, processor, store, settings);
}

function postgresQueue<T>(name: string, store: Extract<BullmqStore, { backend: 'postgres' }>, settings: QueueSettings) {
  const pool = createQueuePool(store, 0);
  const queue = new Queue(
    name,
    { ...settings, connection: pool },
    createRecoveringPostgresBackend,
  ) as unknown as Queue<T>;
  return endPoolAfterClose(queue, pool);
}

function postgresWorker<T, R>(
  name: string,
  processor: Processor<T, R>,
  store: Extract<BullmqStore, { backend: 'postgres' }>,
  settings: WorkerSettings,
) {
  // One place more than the queries need: the Worker's LISTEN connection comes from this pool.
  const pool = createQueuePool(store, 1);
  const worker = new Worker(
    name,
    processor as Processor,
    { ...settings, connection: pool },
    createRecoveringPostgresBackend,
  ) as unknown as Worker<T, R>;
  return endPoolAfterClose(worker, pool);
}
