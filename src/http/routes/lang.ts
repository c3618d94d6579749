import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { resultFromJob } from '../../jobs/job-results.ts';
import type { SubmissionBody } from '../../validation/submission.ts';
import { errorResponses, sendError } from '../error-replies.ts';
import { resultHeaders, resultJson } from '../job-views.ts';
import { languageParamSchema, ownerOf, submissionBodySchema } from '../requests.ts';
import type { Services } from '../services.ts';

function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && /\bapplication\/json\b/i.test(accept) && !/\btext\/plain\b/i.test(accept);
}

/**
 * `POST /lang/:language`, braindrill's synchronous API: code as text/plain, output as text/plain with the
 * outcome in headers (200 whenever the program ran), or the result object with `Accept: application/json`.
 */
export const langRoutes: FastifyPluginAsync<{ services: Services }> = async (app: FastifyInstance, { services }) => {
  app.post<{ Params: { language: string }; Body: string | SubmissionBody }>(
    '/lang/:language',
    {
      config: { access: 'submit' },
      schema: {
        summary: 'Run code synchronously',
        description: 'text/plain body: the code. JSON body: {code | files, stdin?, args?}. Answers text/plain (stdout; stderr when the program failed) or JSON with Accept: application/json.',
        tags: ['execution'],
        params: languageParamSchema,
        body: {
          content: {
            'text/plain': { schema: { type: 'string' } },
            'application/x-www-form-urlencoded': { schema: { type: 'string' } },
            'application/json': { schema: submissionBodySchema },
          },
        },
        response: {
          200: { content: { 'text/plain': { schema: { type: 'string' } }, 'application/json': { schema: { $ref: 'ExecutionResult#' } } } },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const language = services.languages.resolve(request.params.language);
      const body: SubmissionBody = typeof request.body === 'string' ? { code: request.body } : (request.body ?? {});
      const submission = services.validate(body);
      const { job, finished } = await services.jobs.run(language, submission, ownerOf(request), services.syncWaitMs(language));
      reply.header('x-job-id', job.id);
      request.log.info({ job: job.id, language: language.id, finished }, 'sync job answered');
      if (!finished) {
        return sendError(reply, 504, 'still_running', `The job did not finish in time; it is still ${job.status}. Poll GET /jobs/${job.id}.`);
      }
      const result = resultFromJob(job);
      reply.headers(resultHeaders(result));
      if (result.reason === 'internal') return sendError(reply, 500, 'internal', job.error ?? 'The sandbox failed; see the logs.');
      if (wantsJson(request.headers.accept)) return reply.type('application/json; charset=utf-8').send(resultJson(language, result));
      const text = result.status === 'completed' ? result.stdout : result.stderr || result.stdout;
      return reply.type('text/plain; charset=utf-8').send(text);
    },
  );
};
