import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from '../observability/logger.ts';
import { errorsPlugin } from './errors.ts';
import { resultSchema } from './result.ts';
import { healthRoutes, readySchema } from './routes/health.ts';
import { langRoutes } from './routes/lang.ts';
import { languageRoutes } from './routes/languages.ts';
import { jobRoutes } from './routes/jobs.ts';
import { runRoutes } from './routes/runs.ts';
import type { Services } from './services.ts';

export interface AppOptions {
  services: Services;
  log: Logger;
  bodyLimitBytes: number;
}

/** The HTTP face of a node: routes translate requests into calls on `services` and back. */
export async function buildApp({ services, log, bodyLimitBytes }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: bodyLimitBytes,
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
  app.addSchema(resultSchema);
  app.addSchema(readySchema);

  await app.register(healthRoutes, { services });
  await app.register(languageRoutes, { services });
  await app.register(langRoutes, { services });
  await app.register(jobRoutes, { services });
  await app.register(runRoutes, { services });
  return app;
}
