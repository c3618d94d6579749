import type { FastifyPluginAsync } from 'fastify';
import { errorResponses } from '../error-replies.ts';
import type { Services } from '../services.ts';

const workerSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['IDLE', 'BUSY'] },
    uptime: { type: 'integer' },
    managerId: { type: 'string' },
    currentJobId: { type: ['string', 'null'] },
  },
} as const;

/** Lambex's worker API (admin key): list, scale, kill. */
export const workerRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/api/workers',
    { config: { access: 'admin' }, schema: { summary: 'List live workers', tags: ['workers'], response: { 200: { type: 'array', items: workerSchema }, ...errorResponses } } },
    async () => services.workers.list(),
  );

  app.post<{ Body: { count?: number; targetId?: string } | undefined }>(
    '/api/workers/scale',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Spawn workers on a manager (random live one unless targetId)',
        tags: ['workers'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { count: { type: 'integer', minimum: 1, maximum: 64 }, targetId: { type: 'string', minLength: 1, maxLength: 128 } },
        },
        response: { 202: { type: 'object', properties: { managerId: { type: 'string' }, desired: { type: 'integer' }, count: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const count = request.body?.count ?? 1;
      const result = await services.workers.scale(count, request.body?.targetId);
      return reply.code(202).send({ ...result, count });
    },
  );

  app.delete<{ Params: { workerId: string } }>(
    '/api/workers/:workerId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Kill a worker (after its current execution)',
        tags: ['workers'],
        params: { type: 'object', required: ['workerId'], properties: { workerId: { type: 'string', maxLength: 128 } } },
        response: { 202: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      await services.workers.kill(request.params.workerId);
      return reply.code(202).send({ id: request.params.workerId, status: 'KILLING' });
    },
  );
};
