import type { Language } from '../languages/language.ts';
import { snakeStep } from '../jobs/views.ts';
import type { ExecutionResult } from '../sandbox/execution.ts';

/** A step's statistics (`snakeStep`); the compile step also carries the compiler's output. */
export const stepSchema = {
  type: ['object', 'null'],
  properties: {
    exit_code: { type: ['integer', 'null'] },
    signal: { type: ['string', 'null'] },
    wall_ms: { type: 'integer' },
    cpu_ms: { type: 'integer' },
    max_rss_kb: { type: 'integer' },
    warm: { type: 'boolean' },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
  },
} as const;

/** The same for the camelCase API (`camelStep`). */
export const camelStepSchema = {
  type: ['object', 'null'],
  properties: {
    exitCode: { type: ['integer', 'null'] },
    signal: { type: ['string', 'null'] },
    wallMs: { type: 'integer' },
    cpuMs: { type: 'integer' },
    maxRssKb: { type: 'integer' },
    warm: { type: 'boolean' },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
  },
} as const;

/** The JSON form of a result (snake_case); every field listed, since Fastify drops unlisted ones. */
export const resultSchema = {
  $id: 'ExecutionResult',
  type: 'object',
  properties: {
    language: { type: 'string' },
    version: { type: 'string' },
    status: { type: 'string', enum: ['completed', 'failed', 'timedout'] },
    reason: { type: ['string', 'null'] },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    exit_code: { type: ['integer', 'null'] },
    signal: { type: ['string', 'null'] },
    execution_time_ms: { type: 'integer' },
    truncated: { type: 'boolean' },
    compile: stepSchema,
    run: stepSchema,
  },
} as const;

export function resultJson(language: Language, result: ExecutionResult) {
  return {
    language: language.id,
    version: language.version,
    status: result.status,
    reason: result.reason,
    stdout: result.stdout,
    stderr: result.stderr,
    exit_code: result.exitCode,
    signal: result.signal,
    execution_time_ms: result.executionTimeMs,
    truncated: result.truncated,
    compile: snakeStep(result.compile),
    run: snakeStep(result.run),
  };
}

/** Headers that carry the outcome on the plain-text answer of POST /lang/:language. */
export function resultHeaders(result: ExecutionResult): Record<string, string> {
  return {
    'x-status': result.status,
    'x-reason': result.reason ?? 'none',
    'x-exit-code': result.exitCode === null ? 'none' : String(result.exitCode),
    'x-execution-time-ms': String(result.executionTimeMs),
    'x-truncated': String(result.truncated),
    ...(result.signal ? { 'x-signal': result.signal } : {}),
  };
}
