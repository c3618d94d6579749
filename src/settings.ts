import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.ts';

/** The nearest folder holding package.json, from src/ or from the build in dist/src/. */
function repositoryRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '..');
  }
}

/** Repository root: config/ and images/ are found from here. */
export const ROOT_DIR = repositoryRoot(path.dirname(fileURLToPath(import.meta.url)));

export type Role = 'api' | 'worker' | 'all';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Settings {
  env: 'development' | 'production' | 'test';
  role: Role;
  nodeId: string;
  host: string;
  port: number;
  logLevel: LogLevel;
  redisUrl: string | null;
  redisPrefix: string;
  databaseUrl: string | null;
  dataDir: string;
  dockerSocket: string;
  sandboxRuntime: 'auto' | 'runc' | 'crun' | 'runsc';
  seccompProfile: string;
  runtimeImage: string | null;
  languagesFile: string;
  concurrency: number;
  outputKeepBytes: number;
  outputDrainFactor: number;
  syncWaitMarginMs: number;
  rateLimitMaxRequests: number;
  rateLimitWindowSeconds: number;
  jobsTtlSeconds: number;
  bodyLimitBytes: number;
  apiKeys: string | null;
  rateLimitReadMaxRequests: number;
  ipRateLimitMax: number;
  /** Fastify's trustProxy: which peers' X-Forwarded-* headers are believed (request.ip, the per-IP guard). */
  trustProxy: boolean | string[];
  keyMaxQueuedJobs: number;
  keyMaxRunningJobs: number;
  maxBacklog: number;
  blockedPatterns: string[];
  metricsToken: string | null;
  maxWorkers: number;
  warmPool: boolean;
  warmPoolLanguages: string[];
  warmPoolMaxPerLanguage: number;
  warmPoolStarts: number;
  warmPoolMemoryMb: number;
  managerMemoryBudgetMb: number;
  managerCpuBudget: number;
}

type Parser<T> = (raw: string, name: string) => T;

interface Variable<K extends keyof Settings> {
  name: string;
  key: K;
  description: string;
  default: (partial: Partial<Settings>) => Settings[K];
  parse: Parser<Settings[K]>;
}

const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> =>
  (raw, name) => {
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(`${name}=${JSON.stringify(raw)} must be an integer between ${min} and ${max}.`);
    }
    return value;
  };

const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw, name) => {
    if (!(values as string[]).includes(raw)) {
      throw new ConfigError(`${name}=${JSON.stringify(raw)} must be one of: ${values.join(', ')}.`);
    }
    return raw as T;
  };

const text: Parser<string> = (raw, name) => {
  if (raw.trim() === '') throw new ConfigError(`${name} is set but empty; unset it or give a value.`);
  return raw.trim();
};

const url =
  (...protocols: string[]): Parser<string> =>
  (raw, name) => {
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) throw new Error(`protocol ${parsed.protocol}`);
      return raw;
    } catch {
      throw new ConfigError(`${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}.`);
    }
  };

/** The names @fastify/proxy-addr expands into address ranges. */
const PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

/** An address, a CIDR (`10.0.0.0/8`, `fd00::/8`) or a named range. */
function isProxyAddress(entry: string): boolean {
  if (PROXY_RANGES.includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const kind = isIP(address);
  if (kind === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (kind === 4 ? 32 : 128));
}

const trustProxy: Parser<boolean | string[]> = (raw, name) => {
  const value = raw.trim();
  if (value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) {
    // Fastify 5 ignores a hop count (it cannot tell a proxy from a client that sends the header itself).
    throw new ConfigError(`${name}=${JSON.stringify(raw)}: a hop count is not accepted, as Fastify would trust no proxy with it; list the proxies' addresses instead (e.g. 10.0.0.0/8).`);
  }
  const entries = value.split(',').map((entry) => entry.trim());
  const bad = entries.find((entry) => !isProxyAddress(entry));
  if (bad !== undefined) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} must be false, true, or comma-separated proxy addresses (IPs, CIDRs, ${PROXY_RANGES.join(', ')}); ${JSON.stringify(bad)} is none of them.`);
  }
  return entries;
};

const redisPrefix: Parser<string> = (raw, name) => {
  if (!/^[A-Za-z0-9:_.{}-]{1,64}$/.test(raw)) throw new ConfigError(`${name}=${JSON.stringify(raw)} must be 1-64 characters of A-Z a-z 0-9 : _ . - { }.`);
  return raw;
};

function variable<K extends keyof Settings>(v: Variable<K>): Variable<K> {
  return v;
}

/**
 * Every environment variable braindrill reads, in one table: the README's configuration section is
 * this table.
 */
export const VARIABLES = [
  variable({ name: 'NODE_ENV', key: 'env', description: 'development, production or test; production refuses development defaults', default: () => 'development', parse: oneOf('development', 'production', 'test') }),
  variable({ name: 'ROLE', key: 'role', description: 'api (HTTP only), worker (a manager of sandbox workers) or all', default: () => 'all', parse: oneOf('api', 'worker', 'all') }),
  variable({ name: 'NODE_ID', key: 'nodeId', description: 'this node\'s id in labels, logs and membership', default: () => `${os.hostname()}-${randomBytes(3).toString('hex')}`, parse: text }),
  variable({ name: 'HOST', key: 'host', description: 'address to bind', default: (s) => (s.env === 'production' ? '0.0.0.0' : '127.0.0.1'), parse: text }),
  variable({ name: 'PORT', key: 'port', description: 'HTTP port', default: () => 8080, parse: integer(0, 65535) }),
  variable({ name: 'LOG_LEVEL', key: 'logLevel', description: 'pino level', default: () => 'info', parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') }),
  variable({ name: 'REDIS_URL', key: 'redisUrl', description: 'Redis for the cluster; unset: in-process bus', default: () => null, parse: url('redis:', 'rediss:') }),
  variable({ name: 'REDIS_PREFIX', key: 'redisPrefix', description: 'prefix of every Redis key and channel the engine uses (two deployments may share a Redis)', default: () => 'braindrill:', parse: redisPrefix }),
  variable({ name: 'DATABASE_URL', key: 'databaseUrl', description: 'PostgreSQL; unset: embedded PGlite in DATA_DIR', default: () => null, parse: url('postgres:', 'postgresql:') }),
  variable({ name: 'DATA_DIR', key: 'dataDir', description: 'embedded database directory', default: () => path.join(ROOT_DIR, 'data'), parse: text }),
  variable({ name: 'DOCKER_SOCKET', key: 'dockerSocket', description: 'Docker Engine socket', default: () => '/var/run/docker.sock', parse: text }),
  variable({ name: 'SANDBOX_RUNTIME', key: 'sandboxRuntime', description: 'OCI runtime of sandboxes: auto (crun where dockerd has it, else runc), runc, crun or runsc (gVisor); one dockerd lacks is a start-up error', default: () => 'auto', parse: oneOf('auto', 'runc', 'crun', 'runsc') }),
  variable({ name: 'SECCOMP_PROFILE', key: 'seccompProfile', description: 'the sandboxes\' seccomp profile (Docker\'s JSON format), checked at start-up', default: () => path.join(ROOT_DIR, 'config', 'seccomp.json'), parse: text }),
  variable({ name: 'RUNTIME_IMAGE', key: 'runtimeImage', description: 'runtime image tag; unset: the tag images/build.sh computes from the recipe', default: () => null, parse: text }),
  variable({ name: 'LANGUAGES_FILE', key: 'languagesFile', description: 'language definitions', default: () => path.join(ROOT_DIR, 'config', 'languages.json'), parse: text }),
  variable({ name: 'CONCURRENCY', key: 'concurrency', description: 'executions at once on this node', default: () => os.availableParallelism(), parse: integer(0, 256) }),
  variable({ name: 'OUTPUT_LIMIT_BYTES', key: 'outputKeepBytes', description: 'bytes kept per output stream', default: () => 64 * 1024, parse: integer(1024, 64 * 1024 * 1024) }),
  variable({ name: 'OUTPUT_DRAIN_FACTOR', key: 'outputDrainFactor', description: 'output beyond keep x factor kills the run (output_limit)', default: () => 16, parse: integer(1, 1024) }),
  variable({ name: 'SYNC_WAIT_MARGIN_MS', key: 'syncWaitMarginMs', description: 'extra wait of POST /lang beyond the language\'s limits', default: () => 10_000, parse: integer(0, 600_000) }),
  variable({ name: 'RATE_LIMIT_MAX_REQUESTS', key: 'rateLimitMaxRequests', description: 'submissions per key per window', default: () => 100, parse: integer(1) }),
  variable({ name: 'RATE_LIMIT_WINDOW_SECONDS', key: 'rateLimitWindowSeconds', description: 'rate-limit refill window', default: () => 3600, parse: integer(1) }),
  variable({ name: 'JOBS_TTL', key: 'jobsTtlSeconds', description: 'finished jobs are deleted after this many seconds', default: () => 3600, parse: integer(1) }),
  variable({ name: 'API_KEYS', key: 'apiKeys', description: 'extra keys: name:key[:admin],… (production: required unless keys are in the database)', default: () => null, parse: text }),
  variable({ name: 'RATE_LIMIT_READ_MAX_REQUESTS', key: 'rateLimitReadMaxRequests', description: 'reads per key per minute', default: () => 600, parse: integer(1) }),
  variable({ name: 'IP_RATE_LIMIT_MAX', key: 'ipRateLimitMax', description: 'requests per client IP per minute, before any key is checked', default: () => 3000, parse: integer(1) }),
  variable({ name: 'TRUST_PROXY', key: 'trustProxy', description: 'false, true (any proxy) or the proxies\' addresses (IPs, CIDRs) whose X-Forwarded-For gives the client IP', default: () => false, parse: trustProxy }),
  variable({ name: 'KEY_MAX_QUEUED_JOBS', key: 'keyMaxQueuedJobs', description: 'jobs one key may have waiting at once (429 beyond)', default: () => 200, parse: integer(1) }),
  variable({ name: 'KEY_MAX_RUNNING_JOBS', key: 'keyMaxRunningJobs', description: 'jobs of one key running at once on a node; the rest wait their turn', default: () => Math.max(1, os.availableParallelism()), parse: integer(1) }),
  variable({ name: 'MAX_BACKLOG', key: 'maxBacklog', description: 'queued jobs in all; past it new jobs get 503 with Retry-After', default: () => 10_000, parse: integer(1) }),
  variable({ name: 'BLOCKED_PATTERNS', key: 'blockedPatterns', description: 'comma-separated substrings refused in code (policy, not the security boundary); "off" disables', default: () => ['rm -rf', 'wget', 'curl'], parse: (raw) => (raw.trim() === 'off' ? [] : raw.split(',').map((p) => p.trim()).filter(Boolean)) }),
  variable({ name: 'METRICS_TOKEN', key: 'metricsToken', description: 'when set, /metrics needs Authorization: Bearer <token>', default: () => null, parse: text }),
  variable({ name: 'MAX_WORKERS', key: 'maxWorkers', description: 'cluster-wide cap on workers that POST /api/workers/scale may reach', default: () => 64, parse: integer(0, 4096) }),
  variable({ name: 'MANAGER_MEMORY_BUDGET_MB', key: 'managerMemoryBudgetMb', description: 'a manager runs executions while the sum of their memory limits fits this', default: () => Math.floor((os.totalmem() / 1024 / 1024) * 0.5), parse: integer(64) }),
  variable({ name: 'MANAGER_CPU_BUDGET', key: 'managerCpuBudget', description: 'a manager runs executions while the sum of their CPU limits fits this', default: () => Math.max(1, os.availableParallelism()), parse: integer(1, 1024) }),
  variable({ name: 'WARM_POOL', key: 'warmPool', description: 'keep sandbox containers started ahead of demand (1) or start each one cold (0)', default: () => true, parse: (raw, name) => { if (raw !== '0' && raw !== '1') throw new ConfigError(`${name} must be 0 or 1.`); return raw === '1'; } }),
  variable({ name: 'WARM_POOL_LANGUAGES', key: 'warmPoolLanguages', description: 'languages kept warm from the start (others warm up once used)', default: () => ['python', 'javascript', 'bash'], parse: (raw) => raw.split(',').map((s) => s.trim()).filter(Boolean) }),
  variable({ name: 'WARM_POOL_MAX', key: 'warmPoolMaxPerLanguage', description: 'most containers waiting for one language', default: () => Math.max(2, os.availableParallelism()), parse: integer(1, 64) }),
  variable({ name: 'WARM_POOL_STARTS', key: 'warmPoolStarts', description: 'warm-pool container starts in flight at once', default: () => Math.max(1, os.availableParallelism()), parse: integer(1, 64) }),
  variable({ name: 'WARM_POOL_MEMORY_MB', key: 'warmPoolMemoryMb', description: 'sum of the memory limits of waiting containers', default: () => 2048, parse: integer(64) }),
  variable({ name: 'BODY_LIMIT_BYTES', key: 'bodyLimitBytes', description: 'largest HTTP body accepted', default: () => 2 * 1024 * 1024, parse: integer(1024, 64 * 1024 * 1024) }),
] as const;

/** Whether `host` is a loopback address (or `localhost`): only this machine can reach a node bound to it. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'));
}

/** Parses and validates the environment; throws ConfigError naming the first bad variable. */
export function loadSettings(environment: NodeJS.ProcessEnv = process.env): Settings {
  const settings: Partial<Settings> = {};
  const target = settings as Record<string, unknown>;
  for (const v of VARIABLES) {
    const raw = environment[v.name];
    target[v.key] = raw === undefined || raw === '' ? v.default(settings) : v.parse(raw, v.name);
  }
  const result = settings as Settings;
  if (result.redisUrl && !result.databaseUrl) {
    throw new ConfigError(
      'REDIS_URL is set but DATABASE_URL is not: a cluster needs a shared PostgreSQL. Set DATABASE_URL, or unset REDIS_URL for the embedded single-node mode.',
    );
  }
  if (result.role !== 'worker' && result.env !== 'production' && result.apiKeys === null && !isLoopbackHost(result.host)) {
    throw new ConfigError(
      `HOST=${result.host}: the development keys work only while the engine listens on loopback (127.0.0.1, ::1), and there is no API_KEYS. Set API_KEYS=name:key[:admin],… (keys of at least 16 characters), or bind HOST to loopback.`,
    );
  }
  return result;
}
