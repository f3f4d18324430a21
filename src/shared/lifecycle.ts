import type { Logger } from './logger.js';

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
