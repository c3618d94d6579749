import { pino, type Logger } from 'pino';
import type { LogLevel } from '../settings.ts';

export type { Logger };

/** Paths never written: submissions, stdin and keys stay out of logs whatever a caller passes. */
const REDACT = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'headers["x-api-key"]',
  '*.code',
  '*.files',
  '*.stdin',
  '*.apiKey',
  'code',
  'files',
  'stdin',
  'apiKey',
];

/** Removes `api_key` (and any other secret-looking parameter) from a URL before it is logged. */
function redactUrl(url: string): string {
  return url.replace(/([?&](?:api_key|apikey|token)=)[^&#]*/gi, '$1[redacted]');
}

export function createLogger(level: LogLevel, nodeId: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { node: nodeId },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: {
        req: (req: { method?: string; url?: string; id?: string }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url ?? ''),
        }),
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
