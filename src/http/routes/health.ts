import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.ts';

/** Open probes: `/health` (liveness), `/ready` (this node's dependencies), `/metrics` (Prometheus). */
export const healthRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/health',
    { schema: { summary: 'Liveness', tags: ['monitoring'], response: { 200: { type: 'string' } } } },
    async (_request, reply) => reply.type('text/plain; charset=utf-8').send('healthy'),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: 503 only when this node\'s own dependencies are down',
        tags: ['monitoring'],
        response: {
          '2xx': { $ref: 'Ready#' },
          503: { $ref: 'Ready#' },
        },
      },
    },
    async (_request, reply) => {
      const report = await services.ready();
      return reply.code(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not_ready', ...report });
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['monitoring'], response: { 200: { type: 'string' } } } }, async (_request, reply) => {
    const registry = services.metrics.registry;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
};

export const readySchema = {
  $id: 'Ready',
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not_ready'] },
    ready: { type: 'boolean' },
    checks: {
      type: 'object',
      additionalProperties: { type: 'object', properties: { ok: { type: 'boolean' }, message: { type: 'string' } } },
    },
    members: { type: 'object', properties: { api: { type: 'integer' }, managers: { type: 'integer' }, workers: { type: 'integer' } } },
    capacity: { type: 'object', properties: { idle: { type: 'integer' }, busy: { type: 'integer' }, queued: { type: 'integer' } } },
  },
} as const;
