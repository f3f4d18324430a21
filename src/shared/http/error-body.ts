import { STATUS_CODES } from 'node:http';

/** The one shape of every error answer, on the API and the worker's operator server alike. */
export interface ErrorBody {
  statusCode: number;
  /** A stable code clients and scripts may branch on (src/api/errors.ts lists the API's). */
  code: string;
  error: string;
  message: string;
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}
