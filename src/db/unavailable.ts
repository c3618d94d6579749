import { BraindrillError } from '../errors.ts';

/**
 * The job database (PostgreSQL) cannot be reached. Requests that need it answer 503; nothing else
 * fails: the pool reconnects by itself when the database is back, without a restart.
 */
export class DatabaseUnavailableError extends BraindrillError {
  constructor(cause?: unknown) {
    const detail = cause instanceof Error ? ` (${cause.message})` : cause === undefined ? '' : ` (${String(cause)})`;
    super(
      'database_unavailable',
      503,
      `The job database is unreachable${detail}. Retry later: this node reconnects by itself as soon as the database is back (check DATABASE_URL and that PostgreSQL is running).`,
      { cause },
    );
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/** admin_shutdown, crash_shutdown, cannot_connect_now, connection_exception, connection_does_not_exist,
 *  connection_failure, sqlclient_unable_to_establish_sqlconnection, sqlserver_rejected_establishment_of_sqlconnection. */
const PG_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004']);
const MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Connection closed',
  'PGlite is closed',
];

/** True when `error` (or one of its causes) means "the database is not reachable", not "the query is wrong". */
export function isConnectionError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== null && current !== undefined && depth < 5; depth++) {
    if (typeof current !== 'object') return false;
    const { code, message, errors } = current as { code?: unknown; message?: unknown; errors?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || PG_CODES.has(code))) return true;
    if (typeof message === 'string' && MESSAGES.some((m) => message.includes(m))) return true;
    // AggregateError (node's happy-eyeballs connect) carries the per-address failures.
    if (Array.isArray(errors) && errors.some((e) => isConnectionError(e))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
