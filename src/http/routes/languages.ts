import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.ts';

const limitsSchema = {
  type: 'object',
  properties: {
    cpus: { type: 'number' },
    memory_mb: { type: 'integer' },
    timeout_ms: { type: 'integer' },
    pids: { type: 'integer' },
    tmpfs_mb: { type: 'integer' },
    file_size_mb: { type: 'integer' },
  },
} as const;

/** `GET /languages`: ids, aliases, versions and limits, straight from config/languages.json. */
export const languageRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/languages',
    {
      schema: {
        summary: 'Supported languages',
        tags: ['execution'],
        response: {
          200: {
            type: 'object',
            properties: {
              languages: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    name: { type: 'string' },
                    aliases: { type: 'array', items: { type: 'string' } },
                    version: { type: 'string' },
                    compiled: { type: 'boolean' },
                    limits: limitsSchema,
                    compile_limits: {
                      type: ['object', 'null'],
                      properties: { timeout_ms: { type: 'integer' }, memory_mb: { type: 'integer' } },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => ({
      languages: services.languages.languages.map((l) => ({
        id: l.id,
        name: l.name,
        aliases: l.aliases,
        version: l.version,
        compiled: l.compile !== null,
        limits: {
          cpus: l.limits.cpus,
          memory_mb: l.limits.memoryMb,
          timeout_ms: l.limits.timeoutMs,
          pids: l.limits.pids,
          tmpfs_mb: l.limits.tmpfsMb,
          file_size_mb: l.limits.fileSizeMb,
        },
        compile_limits: l.compile ? { timeout_ms: l.compile.timeoutMs, memory_mb: l.compile.memoryMb } : null,
      })),
    }),
  );
};
