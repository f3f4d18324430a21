import { STATUS_CODES } from 'node:http';

/** The one shape of every error payonce answers over HTTP, the API's and the worker's alike. */
export interface ErrorBody {
  statusCode: number;
  /** Stable SCREAMING_SNAKE code; clients may branch on it. */
  code: string;
  /** The status's reason phrase. */
  error: string;
  message: string;
}

/** The error body for `statusCode` with a stable `code` and a message fit for the client. */
export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}
