import type { FastifyPluginAsync } from 'fastify';
import { errorResponses, sendError } from '../error-replies.ts';
import type { Services } from '../services.ts';

const keySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    admin: { type: 'boolean' },
    source: { type: 'string' },
    created_at: { type: ['string', 'null'] },
    revoked_at: { type: ['string', 'null'] },
    key: { type: 'string' },
  },
} as const;

/** Key management for admin keys: create (the key is shown once), list, revoke (every node within seconds). */
export const keyRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.post<{ Body: { name: string; admin?: boolean } }>(
    '/admin/keys',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create an API key',
        tags: ['admin'],
        body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' }, admin: { type: 'boolean' } } },
        response: { 201: keySchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { key, stored } = await services.keys.create(request.body.name, request.body.admin ?? false);
      await services.access.refresh();
      return reply.code(201).send({ id: stored.id, name: stored.name, admin: stored.admin, source: stored.source, created_at: stored.createdAt.toISOString(), revoked_at: null, key });
    },
  );

  app.get(
    '/admin/keys',
    { config: { access: 'admin' }, schema: { summary: 'List keys: configured (development, API_KEYS), created at run time, and revocations', tags: ['admin'], response: { 200: { type: 'object', properties: { keys: { type: 'array', items: keySchema } } }, ...errorResponses } } },
    async () => {
      const stored = await services.keys.list();
      const storedIds = new Set(stored.map((k) => k.id));
      return {
        keys: [
          // A configured key that was revoked is listed once, as its revocation.
          ...services.access.configuredKeys.filter((k) => !storedIds.has(k.id)).map((k) => ({ id: k.id, name: k.name, admin: k.admin, source: k.source, created_at: null, revoked_at: null })),
          ...stored.map((k) => ({ id: k.id, name: k.name, admin: k.admin, source: k.source, created_at: k.createdAt.toISOString(), revoked_at: k.revokedAt?.toISOString() ?? null })),
        ],
      };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/admin/keys/:id',
    {
      config: { access: 'admin' },
      schema: { summary: 'Revoke a key (any source)', tags: ['admin'], params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } }, response: { 200: keySchema, ...errorResponses } },
    },
    async (request, reply) => {
      const key = await services.access.find(request.params.id);
      if (!key) return sendError(reply, 404, 'key_not_found', `No key ${request.params.id}.`);
      await services.keys.revoke(key);
      await services.access.refresh();
      return { id: key.id, name: key.name, admin: key.admin, source: key.source, revoked_at: new Date().toISOString() };
    },
  );
};
