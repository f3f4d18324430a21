import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/** Options shared by the API (handed to Fastify) and the worker. */
export function loggerOptions(
  config: Pick<Config, 'LOG_LEVEL' | 'LOG_PRETTY'>,
  name: string,
): LoggerOptions {
  const pretty = config.LOG_PRETTY ?? Boolean(process.stdout.isTTY);
  return {
    name,
    level: config.LOG_LEVEL,
    // Never log credentials that may ride along on a request or an error.
    redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.connectionString'],
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  };
}

export function createLogger(
  config: Pick<Config, 'LOG_LEVEL' | 'LOG_PRETTY'>,
  name: string,
): Logger {
  return pino(loggerOptions(config, name));
}
