import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { errorBody } from '../shared/http/error-body.js';
import { isAppError, type ErrorCode } from './errors.js';
import { REQUEST_ID_HEADER } from './request-id.js';
import { setSecurityHeaders } from './security-headers.js';

/** Fastify's own client errors, mapped to our stable codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
};

/**
 * Errors Fastify raises before routing (a malformed percent-encoding, a path parameter over
 * `maxParamLength`): both are malformed ids to a client, so 400 VALIDATION_FAILED in the house
 * shape. Pass as Fastify's `frameworkErrors` option.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // These answers skip the hooks, which set these headers on every other answer.
  setSecurityHeaders(request.raw, reply.raw);
  void reply
    .code(400)
    .header(REQUEST_ID_HEADER, request.id)
    .send(errorBody(400, 'VALIDATION_FAILED', error.message));
}

/**
 * One error model for every route: AppErrors keep their code and status; schema violations are
 * 400 VALIDATION_FAILED; Fastify's client errors keep their 4xx status; anything else is a 500
 * whose details go to the log, never to the client.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isAppError(error)) {
      if (error.statusCode >= 500) {
        request.log.warn({ err: error.cause ?? error, code: error.code, ...error.logContext }, error.message);
      }
      return reply
        .code(error.statusCode)
        .headers(error.headers)
        .send(errorBody(error.statusCode, error.code, error.message));
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const code: ErrorCode =
        error.validationContext === 'headers' &&
        error.validation.some((issue) => issue.instancePath.includes('idempotency-key'))
          ? 'INVALID_IDEMPOTENCY_KEY'
          : 'VALIDATION_FAILED';
      const details = error.validation
        .map(
          (issue) =>
            `${[error.validationContext, ...issue.instancePath.split('/').filter(Boolean)].join('.')}: ${issue.message}`,
        )
        .join('; ');
      return reply.code(400).send(errorBody(400, code, details));
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = FASTIFY_CODES[error.code] ?? 'VALIDATION_FAILED';
      return reply.code(status).send(errorBody(status, code, error.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send(errorBody(500, 'INTERNAL_ERROR', 'Internal server error'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody(404, 'ROUTE_NOT_FOUND', `Route ${request.method} ${request.url} not found`)),
  );
}
