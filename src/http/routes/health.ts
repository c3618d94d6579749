import type { FastifyPluginAsync } from 'fastify';
import { timingSafeEqual, createHash } from 'node:crypto';
import { sendError } from '../error-replies.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { ReadyReport } from '../services.ts';

function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = header?.startsWith('Bearer ') ? header.slice(7) : '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(token));
}

/** Open probes: `/health` (liveness), `/ready` (this node's dependencies), `/metrics` (Prometheus). */
export const healthRoutes: FastifyPluginAsync<{ ready: () => Promise<ReadyReport>; metrics: Metrics; metricsToken: string | null }> = async (app, { ready, metrics, metricsToken }) => {
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
      const report = await ready();
      return reply.code(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not_ready', ...report });
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['monitoring'], response: { 200: { type: 'string' } } } }, async (request, reply) => {
    if (metricsToken !== null && !bearerMatches(request.headers.authorization, metricsToken)) {
      return sendError(reply, 401, 'unauthorized', 'Metrics need Authorization: Bearer <METRICS_TOKEN>.');
    }
    const registry = metrics.registry;
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
      additionalProperties: { type: 'object', properties: { ok: { type: 'boolean' } } },
    },
    members: { type: 'object', properties: { api: { type: 'integer' }, managers: { type: 'integer' }, workers: { type: 'integer' } } },
    capacity: { type: 'object', properties: { idle: { type: 'integer' }, busy: { type: 'integer' }, queued: { type: 'integer' } } },
  },
} as const;
