import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { ValidationError } from '../../errors.ts';
import { braindrillJob, braindrillJobSummary } from '../../jobs/views.ts';
import { type SubmissionBody } from '../../validation/submission.ts';
import { errorResponses, nullable, sendError } from '../errors.ts';
import { stepSchema } from '../result.ts';
import type { Services } from '../services.ts';
import { submissionBodySchema } from './lang.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const MAX_PAGE = 100;

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

export function ownerOf(request: FastifyRequest): string | null {
  return request.principal?.keyId ?? null;
}


export const jobSchema = {
  $id: 'Job',
  type: 'object',
  properties: {
    job_id: { type: 'string' },
    language: { type: 'string' },
    status: { type: 'string' },
    output: nullable('string'),
    error: nullable('string'),
    created_at: nullable('string'),
    started_at: nullable('string'),
    completed_at: nullable('string'),
    execution_duration_ms: nullable('integer'),
    stdout: nullable('string'),
    stderr: nullable('string'),
    exit_code: nullable('integer'),
    signal: nullable('string'),
    reason: nullable('string'),
    truncated: { type: 'boolean' },
    version: { type: 'string' },
    attempts: { type: 'integer' },
    node_id: nullable('string'),
    worker_id: nullable('string'),
    compile: stepSchema,
    run: stepSchema,
  },
} as const;

const jobSummarySchema = {
  type: 'object',
  properties: {
    job_id: { type: 'string' },
    language: { type: 'string' },
    status: { type: 'string' },
    created_at: nullable('string'),
    completed_at: nullable('string'),
    execution_duration_ms: nullable('integer'),
    started_at: nullable('string'),
    reason: nullable('string'),
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } } as const;

/** braindrill's async API: `POST /jobs`, `GET /jobs/:id`, `GET /jobs`, `DELETE /jobs/:id`. */
export const jobRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.addSchema(jobSchema);

  app.post<{ Body: SubmissionBody & { language: string } }>(
    '/jobs',
    {
      config: { access: 'submit' },
      schema: {
        summary: 'Submit a job',
        tags: ['jobs'],
        body: { ...submissionBodySchema, required: ['language'], properties: { ...submissionBodySchema.properties, language: { type: 'string', minLength: 1, maxLength: 64 } } },
        response: { 202: { type: 'object', properties: { job_id: { type: 'string' }, status: { type: 'string' } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { language: name, ...body } = request.body;
      const language = services.languages.resolve(name);
      const job = await services.jobs.submit(language, services.validate(body), ownerOf(request));
      request.log.info({ job: job.id, language: language.id }, 'job submitted');
      return reply.code(202).send({ job_id: job.id, status: job.status });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/jobs/:id',
    { config: { access: 'read' }, schema: { summary: 'Get a job', tags: ['jobs'], params: idParams, response: { 200: { $ref: 'Job#' }, ...errorResponses } } },
    async (request, reply) => {
      const job = await services.jobs.get(parseJobId(request.params.id), ownerOf(request));
      if (!job) return sendError(reply, 404, 'job_not_found', `No job ${request.params.id}.`);
      return braindrillJob(job);
    },
  );

  app.get<{ Querystring: { limit?: string; offset?: string } }>(
    '/jobs',
    {
      config: { access: 'read' },
      schema: {
        summary: 'List jobs, newest first',
        tags: ['jobs'],
        querystring: { type: 'object', properties: { limit: { type: 'string', maxLength: 20 }, offset: { type: 'string', maxLength: 20 } } },
        response: {
          200: {
            type: 'object',
            properties: {
              jobs: { type: 'array', items: jobSummarySchema },
              pagination: { type: 'object', properties: { total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const page = parsePage(request.query);
      const { jobs, total } = await services.jobs.list(ownerOf(request), page.limit, page.offset);
      return { jobs: jobs.map(braindrillJobSummary), pagination: { total, ...page } };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/jobs/:id',
    { config: { access: 'read' }, schema: { summary: 'Cancel a queued or running job', tags: ['jobs'], params: idParams, response: { 200: { $ref: 'Job#' }, ...errorResponses } } },
    async (request, reply) => {
      const id = parseJobId(request.params.id);
      const owner = ownerOf(request);
      const outcome = await services.jobs.cancel(id, owner);
      if (!outcome.found) return sendError(reply, 404, 'job_not_found', `No job ${request.params.id}.`);
      const job = await services.jobs.get(id, owner);
      if (!outcome.cancelled) return sendError(reply, 409, 'job_finished', `Job ${id} has already finished (${job?.status ?? 'gone'}); nothing to cancel.`);
      return braindrillJob(job!);
    },
  );
};
