import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { KeyRing } from '../access/api-keys.ts';
import type { BucketPolicy } from '../access/token-bucket.ts';
import type { RateDecision } from '../actors/rate-limiter.ts';
import type { Metrics } from '../observability/metrics.ts';
import { sendError } from './error-replies.ts';

/** What a route costs: `submit` takes a token from the key's submission bucket, `read` from its read bucket. */
export type Access = 'submit' | 'read' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

export interface AccessOptions {
  keys: KeyRing;
  metrics: Metrics;
  submitPolicy: BucketPolicy;
  readPolicy: BucketPolicy;
  take(bucket: string, policy: BucketPolicy): Promise<RateDecision>;
}

/** The presented key: `X-API-Key` (preferred) or the `api_key` query parameter (older clients send it). */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const query = request.query as Record<string, unknown> | undefined;
  return typeof query?.api_key === 'string' ? query.api_key : undefined;
}

function refuse(reply: FastifyReply, decision: RateDecision, what: string): FastifyReply {
  reply.header('x-ratelimit-retry-after', String(decision.retryAfterSeconds));
  reply.header('retry-after', String(decision.retryAfterSeconds));
  return sendError(reply, 429, 'rate_limited', `Rate limit of ${decision.limit} ${what} reached for this API key; retry in ${decision.retryAfterSeconds} s.`);
}

/**
 * Authentication and per-key rate limits for every route whose config names an `access` level.
 * Runs in onRequest, before the body is read: a request without a valid key costs nothing.
 */
export const accessPlugin = fp<AccessOptions>(
  async (app: FastifyInstance, options) => {
    app.addHook('onRequest', async (request, reply) => {
      const access = request.routeOptions.config.access;
      if (!access) return;
      const key = options.keys.authenticate(presentedKey(request));
      if (!key) {
        options.metrics.authFailures.inc();
        return sendError(reply, 401, 'unauthorized', 'A valid API key is required: send it in the X-API-Key header (or the api_key query parameter).');
      }
      if (access === 'admin' && !key.admin) {
        options.metrics.authFailures.inc();
        return sendError(reply, 403, 'forbidden', 'This route needs an admin API key.');
      }
      request.principal = { keyId: key.id, admin: key.admin };
      const submit = access === 'submit';
      const decision = await options.take(`${submit ? 'submit' : 'read'}:${key.id}`, submit ? options.submitPolicy : options.readPolicy);
      reply.header('x-ratelimit-limit', String(decision.limit));
      reply.header('x-ratelimit-remaining', String(decision.remaining));
      if (!decision.allowed) {
        options.metrics.rateLimitHits.inc();
        return refuse(reply, decision, submit ? 'submissions per window' : 'reads per minute');
      }
    });
  },
  { fastify: '5.x', name: 'braindrill-access', dependencies: ['braindrill-errors'] },
);
