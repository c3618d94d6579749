import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ValidationError } from '../errors.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Bodies must be valid UTF-8: a replacement character silently changing someone's code is worse than a 400. */
function decode(body: Buffer): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new ValidationError('invalid_encoding', 'The body is not valid UTF-8.');
  }
}

/**
 * Strict body parsers: JSON (Fastify's own parser, with prototype-poisoning protection, after a strict
 * UTF-8 decode), text/plain, and form-urlencoded taken as text because `curl -d` sends code that way.
 */
export const bodiesPlugin = fp(
  async (app: FastifyInstance) => {
    const json = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser(['application/json', 'text/plain']);
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      try {
        json(request, decode(body as Buffer), done);
      } catch (error) {
        done(error as Error, undefined);
      }
    });
    app.addContentTypeParser(['text/plain', 'application/x-www-form-urlencoded'], { parseAs: 'buffer' }, (_request, body, done) => {
      try {
        done(null, decode(body as Buffer));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
  },
  { fastify: '5.x', name: 'braindrill-bodies' },
);
