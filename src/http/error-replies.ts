import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { BraindrillError, OverloadedError, UnsupportedLanguageError } from '../errors.ts';

export interface ErrorBody {
  error: { code: string; message: string; supported?: string[] };
}

const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        supported: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

/** Response schemas shared by every route: one error shape for all 4xx and 5xx answers. */
export const errorResponses = { '4xx': { $ref: 'Error#' }, '5xx': { $ref: 'Error#' } } as const;

/** Fastify's own error codes mapped to ours; clients see one shape for every refusal. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
};

export function sendError(reply: FastifyReply, statusCode: number, code: string, message: string, extra: Partial<ErrorBody['error']> = {}): FastifyReply {
  return reply.code(statusCode).type('application/json; charset=utf-8').send({ error: { code, message, ...extra } });
}

function errorHandler(this: FastifyInstance, error: FastifyError | BraindrillError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof UnsupportedLanguageError) {
    return sendError(reply, 400, error.code, error.message, { supported: error.supported });
  }
  if (error instanceof BraindrillError) {
    if (error instanceof OverloadedError) reply.header('retry-after', String(error.retryAfterSeconds));
    if (error.statusCode >= 500 && !(error instanceof OverloadedError)) request.log.error({ err: error }, 'request failed');
    return sendError(reply, error.statusCode, error.code, error.message);
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    return sendError(reply, 400, 'invalid_request', `${fastifyError.validationContext ?? 'request'} ${fastifyError.validation[0]?.instancePath ?? ''} ${fastifyError.validation[0]?.message ?? 'is invalid'}`.replace(/\s+/g, ' ').trim());
  }
  if (error instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return sendError(reply, 400, 'invalid_json', 'The body is not valid JSON.');
  }
  const status = fastifyError.statusCode ?? 500;
  if (status < 500) {
    return sendError(reply, status, FASTIFY_CODES[fastifyError.code] ?? 'bad_request', fastifyError.message);
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, 500, 'internal', 'Internal error; the request id in the logs says more.');
}

/** One error shape everywhere: `{error: {code, message}}` with the right status. */
export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    app.addSchema(errorSchema);
    app.setErrorHandler(errorHandler);
    app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'not_found', `No route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}.`));
  },
  { fastify: '5.x', name: 'braindrill-errors' },
);
