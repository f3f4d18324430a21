import type { Logger } from './logger.js';
import { withTimeout } from './timeout.js';

/** How long one close step may take by default before the next one runs anyway. */
const DEFAULT_STEP_TIMEOUT_MS = 10_000;

/**
 * What a composition root has created, in order, and how to undo each. `close()` undoes them in
 * reverse order (HTTP or the transport first, the database last), every step guarded: a step
 * that throws or outlives its deadline is logged and the next one still runs, so one stuck
 * client never leaves the others open. Idempotent: later calls return the first close.
 */
export function createResources(logger: Logger, options: { stepTimeoutMs?: number } = {}) {
  const stepTimeoutMs = options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  const steps: { name: string; undo: () => unknown }[] = [];
  let closing: Promise<void> | undefined;

  return {
    /** Registers how to undo what was just created; returns `resource` for chaining. */
    own<T>(name: string, resource: T, undo: (resource: T) => unknown): T {
      steps.push({ name, undo: () => undo(resource) });
      return resource;
    },

    /** Undoes everything owned, newest first. */
    close(): Promise<void> {
      closing ??= (async () => {
        for (const { name, undo } of steps.reverse()) {
          try {
            await withTimeout(Promise.resolve().then(undo), stepTimeoutMs, `closing ${name}`);
          } catch (error) {
            logger.error({ err: error, step: name }, 'a close step failed; closing the rest');
          }
        }
      })();
      return closing;
    },
  };
}

export type Resources = ReturnType<typeof createResources>;

/**
 * When this process was started with an IPC channel (`npm start` starts the API and the worker
 * that way), shuts it down gracefully once the parent is gone: the channel closes even when the
 * parent is SIGKILLed, which no signal would tell the child. Started any other way, it does
 * nothing.
 */
export function closeWhenParentExits(close: () => void, logger: Logger): void {
  if (!process.channel) return;
  // The channel must not keep this process alive by itself.
  process.channel.unref();
  process.once('disconnect', () => {
    logger.warn('the process that started this one is gone; shutting down');
    close();
  });
}
