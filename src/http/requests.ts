import type { FastifyRequest } from 'fastify';
import { ValidationError } from '../errors.ts';
import { DEFAULT_SUBMISSION_LIMITS } from '../validation/submission.ts';

/** The JSON submission body of POST /lang/:language, POST /jobs and POST /api/runs; limits from the validation rules. */
export const submissionBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    code: { type: 'string' },
    files: {
      type: 'array',
      minItems: 1,
      maxItems: DEFAULT_SUBMISSION_LIMITS.maxFiles,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['content'],
        properties: { name: { type: 'string', maxLength: 255 }, content: { type: 'string' } },
      },
    },
    stdin: { type: 'string' },
    args: { type: 'array', maxItems: DEFAULT_SUBMISSION_LIMITS.maxArgs, items: { type: 'string' } },
  },
} as const;

const languageSchema = { type: 'string', minLength: 1, maxLength: 64 } as const;

/** The same body with the language in it (the async APIs). */
export const languageSubmissionSchema = {
  ...submissionBodySchema,
  required: ['language'],
  properties: { ...submissionBodySchema.properties, language: languageSchema },
} as const;

export const languageParamSchema = { type: 'object', required: ['language'], properties: { language: languageSchema } } as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_PAGE = 100;

/** Rejects a malformed job id before it reaches the database. */
export function parseJobId(id: string): string {
  if (!UUID.test(id)) throw new ValidationError('invalid_job_id', 'Job ids are UUIDs, e.g. 550e8400-e29b-41d4-a716-446655440000.');
  return id.toLowerCase();
}

/** `limit` (1..100, larger is capped) and `offset` (≥ 0) from the query string; anything else is a 400. */
export function parsePage(query: { limit?: string; offset?: string }): { limit: number; offset: number } {
  const parse = (raw: string | undefined, name: string, fallback: number, min: number) => {
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d{1,12}$/.test(raw) || Number(raw) < min) throw new ValidationError(`invalid_${name}`, `"${name}" must be an integer ≥ ${min}.`);
    return Number(raw);
  };
  return { limit: Math.min(parse(query.limit, 'limit', 20, 1), MAX_PAGE), offset: parse(query.offset, 'offset', 0, 0) };
}

/** The key a request was authenticated with: a job belongs to it. */
export function ownerOf(request: FastifyRequest): string | null {
  return request.principal?.keyId ?? null;
}
