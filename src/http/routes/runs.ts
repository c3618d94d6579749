import type { FastifyPluginAsync } from 'fastify';
import type { SubmissionBody } from '../../validation/submission.ts';
import { errorResponses, sendError } from '../error-replies.ts';
import { lambexRun, runSchema } from '../job-views.ts';
import { languageSubmissionSchema, ownerOf, parseJobId } from '../requests.ts';
import type { Services } from '../services.ts';

/** Lambex's runs API over the same jobs, in camelCase: `POST /api/runs`, `GET /api/runs/:runId`. */
export const runRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.post<{ Body: SubmissionBody & { language: string } }>(
    '/api/runs',
    {
      config: { access: 'submit' },
      schema: {
        summary: 'Queue a run (Lambex)',
        tags: ['runs'],
        body: languageSubmissionSchema,
        response: { 202: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' }, url: { type: 'string' } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { language: name, ...body } = request.body;
      const language = services.languages.resolve(name);
      const job = await services.jobs.submit(language, services.validate(body), ownerOf(request));
      request.log.info({ job: job.id, language: language.id }, 'run submitted');
      return reply.code(202).send({ id: job.id, status: 'QUEUED', url: `/api/runs/${job.id}` });
    },
  );

  app.get<{ Params: { runId: string } }>(
    '/api/runs/:runId',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Run status and output (Lambex)',
        tags: ['runs'],
        params: { type: 'object', required: ['runId'], properties: { runId: { type: 'string', maxLength: 100 } } },
        response: {
          200: runSchema,
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const job = await services.jobs.get(parseJobId(request.params.runId), ownerOf(request));
      if (!job) return sendError(reply, 404, 'run_not_found', `No run ${request.params.runId}.`);
      return lambexRun(job);
    },
  );
};
