import type { FastifyPluginAsync } from 'fastify';
import type { SubmissionBody } from '../../validation/submission.ts';
import { errorResponses, sendError } from '../error-replies.ts';
import { braindrillJob, braindrillJobSummary, jobSchema, jobSummarySchema } from '../job-views.ts';
import { languageSubmissionSchema, ownerOf, parseJobId, parsePage } from '../requests.ts';
import type { Services } from '../services.ts';

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
        body: languageSubmissionSchema,
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
      if (!job) return sendError(reply, 404, 'job_not_found', `No job ${request.params.id}.`);
      if (!outcome.cancelled) return sendError(reply, 409, 'job_finished', `Job ${id} has already finished (${job.status}); nothing to cancel.`);
      return braindrillJob(job);
    },
  );
};
