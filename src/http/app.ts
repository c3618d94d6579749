import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from '../observability/logger.ts';
import rateLimit from '@fastify/rate-limit';
import { accessPlugin, type AccessOptions } from './access-hook.ts';
import { bodiesPlugin } from './bodies.ts';
import { errorsPlugin } from './error-replies.ts';
import { resultSchema } from './job-views.ts';
import { keyRoutes } from './routes/keys.ts';
import { healthRoutes, readySchema } from './routes/health.ts';
import { langRoutes } from './routes/lang.ts';
import { languageRoutes } from './routes/languages.ts';
import { jobRoutes } from './routes/jobs.ts';
import { runRoutes } from './routes/runs.ts';
import type { ReadyReport, Services } from './services.ts';
import type { Metrics } from '../observability/metrics.ts';
import { workerRoutes } from './routes/workers.ts';

/** An API node's routes: absent on a manager-only node, which serves only /health, /ready and /metrics. */
export interface ApiRoutesOptions {
  services: Services;
  access: AccessOptions;
}

export interface AppOptions {
  api?: ApiRoutesOptions;
  ready: () => Promise<ReadyReport>;
  metrics: Metrics;
  log: Logger;
  bodyLimitBytes: number;
  /** Requests per client IP per minute, checked before any key (a guard against floods of bad keys). */
  ipRateLimitMax: number;
  /** Fastify's trustProxy: behind a reverse proxy, its addresses, so request.ip is the client's. */
  trustProxy: boolean | string[];
  metricsToken: string | null;
}

/** The HTTP face of a node: routes translate requests into calls on `services` and back. */
export async function buildApp({ api, ready, metrics, log, bodyLimitBytes, ipRateLimitMax, trustProxy, metricsToken }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: bodyLimitBytes,
    trustProxy,
    routerOptions: { maxParamLength: 200 },
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
  });
  app.decorateRequest('principal', null);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'braindrill', version: '0.1.0', description: 'Remote code execution in hardened, throw-away containers.' },
      components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(errorsPlugin);
  await app.register(bodiesPlugin);
  await app.register(rateLimit, {
    global: true,
    max: ipRateLimitMax,
    timeWindow: 60_000,
    hook: 'onRequest',
    keyGenerator: (request) => request.ip,
    // Per-key limits set X-RateLimit-*; this guard only says when to come back.
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      error: { code: 'ip_rate_limited', message: `Too many requests from this address (${context.max} per minute); retry in ${Math.ceil(context.ttl / 1000)} s.` },
    }),
  });
  app.addSchema(resultSchema);
  app.addSchema(readySchema);

  await app.register(healthRoutes, { ready, metrics, metricsToken });
  if (api) {
    const { services } = api;
    await app.register(accessPlugin, api.access);
    await app.register(languageRoutes, { services });
    await app.register(langRoutes, { services });
    await app.register(jobRoutes, { services });
    await app.register(runRoutes, { services });
    await app.register(workerRoutes, { services });
    await app.register(keyRoutes, { services });
  }
  return app;
}
