import type { Language } from '../languages/language.ts';
import type { ExecutionResult, StepStats } from '../sandbox/execution.ts';

const stepSchema = {
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

function step(stats: StepStats | null, output?: { stdout: string; stderr: string }) {
  if (!stats) return null;
  return { exit_code: stats.exitCode, signal: stats.signal, wall_ms: stats.wallMs, cpu_ms: stats.cpuMs, max_rss_kb: stats.maxRssKb, warm: stats.warm === true, ...output };
}

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
    compile: result.compile && step(result.compile, { stdout: result.compile.stdout, stderr: result.compile.stderr }),
    run: step(result.run),
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
