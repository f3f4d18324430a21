import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/** The process's logger (the API hands it to Fastify as its `loggerInstance`). */
export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'LOG_PRETTY'>, name: string): Logger {
  const pretty = config.LOG_PRETTY ?? Boolean(process.stdout.isTTY);
  const options: LoggerOptions = {
    name,
    level: config.LOG_LEVEL,
    // Never log credentials that may ride along on a request or an error.
    redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.connectionString'],
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  };
  return pino(options);
}
