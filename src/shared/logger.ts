import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * The process's logger (the API hands it to Fastify as its `loggerInstance`). It writes to
 * stdout, or to stderr with `toStderr` (commands whose stdout is their answer, such as
 * `npm run reconcile`).
 */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL' | 'LOG_PRETTY'>,
  name: string,
  { toStderr = false } = {},
): Logger {
  const fd = toStderr ? 2 : 1;
  const pretty = config.LOG_PRETTY ?? Boolean((toStderr ? process.stderr : process.stdout).isTTY);
  const options: LoggerOptions = {
    name,
    level: config.LOG_LEVEL,
    // Never log credentials that may ride along on a request or an error.
    redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.connectionString'],
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', destination: fd } } }
      : {}),
  };
  return pretty ? pino(options) : pino(options, pino.destination(fd));
}
