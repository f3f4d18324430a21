/** Postgres's error code for a transaction it aborted to break a deadlock. */
const DEADLOCK_DETECTED = '40P01';

/** Attempts of a statement that Postgres aborted to break a deadlock, before the error is passed on. */
const DEADLOCK_ATTEMPTS = 3;

/**
 * Runs `statement` again when Postgres aborted it to break a deadlock. Batched statements lock
 * rows of many keys at once, so two of them can, rarely, wait on each other; Postgres then
 * aborts one, and running it again is safe because it changed nothing.
 */
export async function retryOnDeadlock<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if ((error as { code?: string }).code !== DEADLOCK_DETECTED || attempt >= DEADLOCK_ATTEMPTS) throw error;
    }
  }
}
