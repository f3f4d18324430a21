import DataLoader from 'dataloader';

/**
 * Coalesces concurrent calls into one statement or script (DataLoader), for the stores on the
 * worker's hot path. A batch is sent once the event loop has handled every I/O event of this
 * turn, so jobs started by different Redis replies share one round trip, at the cost of one
 * loop turn of latency. Each caller still gets exactly its own answer or error.
 *
 * (Holding batches back while an earlier one is in flight, to make them larger, was measured
 * and gave no gain: with a worker's concurrency of jobs, a loop turn already gathers them.)
 */
/** Most calls one statement or script carries; more wait for the next batch. */
const MAX_BATCH_SIZE = 100;

export function createBatcher<K, V>(
  batch: (keys: readonly K[]) => Promise<ReadonlyArray<V | Error>>,
): DataLoader<K, V> {
  return new DataLoader<K, V>(batch, {
    cache: false,
    maxBatchSize: MAX_BATCH_SIZE,
    batchScheduleFn: (dispatch) => setImmediate(dispatch),
  });
}
