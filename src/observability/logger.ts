import { pino, type Logger } from 'pino';
import type { LogLevel } from '../settings.ts';

export type { Logger };

/** Header names whose values are credentials (lower case, as Node.js gives them). */
const SECRET_HEADERS = ['authorization', 'x-api-key', 'x-auth-token', 'cookie', 'proxy-authorization'];

/** Paths never written: submissions, stdin and credentials stay out of logs whatever a caller passes. */
const REDACT = [
  ...SECRET_HEADERS.flatMap((name) => [`req.headers["${name}"]`, `headers["${name}"]`]),
  '*.code',
  '*.files',
  '*.stdin',
  '*.apiKey',
  '*.password',
  '*.token',
  'code',
  'files',
  'stdin',
  'apiKey',
  'password',
  'token',
];

const REDACTED = '[redacted]';

/** Query parameter names (once percent-decoded) whose values are credentials, however they are spelled. */
const SECRET_PARAMETER = /^(api[-_.]?key|key|token|access[-_.]?token|auth|authorization|x-api-key|x-auth-token|password|passwd|secret|stream[-_.]?token)$/i;

function decoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/**
 * A URL safe to log: the value of every query parameter whose name (percent-decoded: `api%5Fkey` is
 * `api_key`) names a credential is replaced, however often it is repeated, and so is any user-info
 * (`scheme://user:password@host`).
 */
export function redactUrl(url: string): string {
  const withoutUserInfo = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@?#]*@/i, `$1${REDACTED}@`);
  const query = withoutUserInfo.indexOf('?');
  if (query < 0) return withoutUserInfo;
  const hash = withoutUserInfo.indexOf('#', query);
  const end = hash < 0 ? withoutUserInfo.length : hash;
  const parameters = withoutUserInfo
    .slice(query + 1, end)
    .split(/([&;])/)
    .map((part) => {
      if (part === '&' || part === ';') return part;
      const equals = part.indexOf('=');
      const name = equals < 0 ? part : part.slice(0, equals);
      return SECRET_PARAMETER.test(decoded(name).trim()) ? `${name}=${REDACTED}` : part;
    })
    .join('');
  return `${withoutUserInfo.slice(0, query + 1)}${parameters}${withoutUserInfo.slice(end)}`;
}

export function createLogger(level: LogLevel, nodeId: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { node: nodeId },
      redact: { paths: REDACT, censor: REDACTED },
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
