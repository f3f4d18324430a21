/** Stable, documented error codes. Clients may branch on these; never rename one. */
export const ERROR_CODES = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  INVALID_IDEMPOTENCY_KEY: 400,
  UNAUTHENTICATED: 401,
  ROUTE_NOT_FOUND: 404,
  PURCHASE_NOT_FOUND: 404,
  WEBHOOK_ENDPOINT_NOT_FOUND: 404,
  EVENT_NOT_FOUND: 404,
  USERNAME_TAKEN: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  USER_NOT_FOUND: 422,
  PRODUCT_NOT_FOUND: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  WEBHOOK_URL_NOT_ALLOWED: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
  QUEUE_UNAVAILABLE: 503,
  IDEMPOTENCY_KEY_PENDING: 503,
  /** Shed before any work was done for it, while the event loop lags (load shedding). */
  OVERLOADED: 503,
  /** Every events stream place of this API process is taken (STATUS_STREAMS_MAX). */
  TOO_MANY_STREAMS: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AppErrorOptions {
  /** Extra response headers, e.g. `Retry-After` on a 503. */
  headers?: Record<string, string>;
  cause?: unknown;
  /** Facts for the log line, never shown to the client (e.g. which dependency failed). */
  logContext?: Record<string, unknown>;
}

/**
 * An expected failure with a stable code. The HTTP status follows from the code, so one code
 * always means one status. Anything that is not an AppError is answered as INTERNAL_ERROR.
 */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly logContext: Record<string, unknown>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.statusCode = ERROR_CODES[code];
    this.headers = options.headers ?? {};
    this.logContext = options.logContext ?? {};
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/**
 * A dependency (Redis, Postgres, the queue) did not answer in time or refused. Callers turn it
 * into a 503 with `Retry-After`, never a 500.
 */
export function serviceUnavailable(
  what: string,
  cause: unknown,
  code: 'SERVICE_UNAVAILABLE' | 'QUEUE_UNAVAILABLE' = 'SERVICE_UNAVAILABLE',
): AppError {
  // The client learns only that retrying is safe; which dependency failed goes to the log.
  const message =
    code === 'QUEUE_UNAVAILABLE'
      ? 'The purchase could not be queued and was not accepted; retry shortly'
      : 'The service is temporarily unavailable; retry shortly';
  return new AppError(code, message, {
    headers: { 'retry-after': '1' },
    cause,
    logContext: { dependency: what },
  });
}
