import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../errors.ts';

/** A key as the engine keeps it: only its hash, never the key itself. */
export interface ApiKey {
  /** Stable, non-secret id: recorded as a job's owner and in logs. */
  id: string;
  name: string;
  hash: string;
  admin: boolean;
  source: 'default' | 'env' | 'database';
}

/** The development keys (documented in the README). Refused in production. */
export const DEFAULT_KEYS: readonly { name: string; key: string; admin: boolean }[] = [
  { name: 'dev', key: 'dev-key-12345', admin: true },
  { name: 'prod', key: 'prod-key-67890', admin: false },
  { name: 'test', key: 'test-key-abcde', admin: false },
];

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * A configured key's id: an HMAC of the key under this installation's secret, so the id (in logs, job
 * owners, /admin/keys) reveals nothing about the key, and still names the same key on every node.
 */
export function configuredKeyId(secret: string, key: string): string {
  return `key_${createHmac('sha256', secret).update(key, 'utf8').digest('hex').slice(0, 16)}`;
}

/** A key created at run time: a random id. */
export function randomKeyId(): string {
  return `key_${randomBytes(8).toString('hex')}`;
}

export function makeKey(name: string, key: string, admin: boolean, source: ApiKey['source'], secret: string): ApiKey {
  return { id: configuredKeyId(secret, key), name, hash: hashKey(key), admin, source };
}

/** Configured keys must be at least this long (the development keys, documented, are the exception). */
export const MIN_KEY_LENGTH = 16;

/** One entry of `API_KEYS`, checked: its id needs the installation's secret (makeKey). */
export interface ConfiguredKey {
  name: string;
  key: string;
  admin: boolean;
}

/**
 * Parses `API_KEYS`: comma-separated `name:key` or `name:key:admin`. Keys must be at least
 * MIN_KEY_LENGTH characters; production refuses the development keys.
 */
export function parseKeyList(raw: string, production: boolean): ConfiguredKey[] {
  const keys: ConfiguredKey[] = [];
  for (const entry of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, key, role, ...rest] = entry.split(':');
    if (!name || !key || rest.length > 0 || (role !== undefined && role !== 'admin')) {
      throw new ConfigError('API_KEYS entries must be name:key or name:key:admin, separated by commas.');
    }
    if (DEFAULT_KEYS.some((d) => d.key === key) && production) {
      throw new ConfigError(`API_KEYS contains the development key of "${name}"; production refuses the default keys. Generate your own (e.g. openssl rand -hex 24).`);
    }
    if (key.length < MIN_KEY_LENGTH) throw new ConfigError(`API_KEYS: the key of "${name}" is shorter than ${MIN_KEY_LENGTH} characters; generate one (e.g. openssl rand -hex 24).`);
    keys.push({ name, key, admin: role === 'admin' });
  }
  return keys;
}

/**
 * The keys this node accepts. Lookup is by the key's sha256, then a constant-time comparison of the
 * digests, so neither the time nor the logs reveal anything about a presented key.
 */
export class KeyRing {
  private byHash = new Map<string, ApiKey>();

  constructor(keys: ApiKey[] = []) {
    this.replace(keys);
  }

  replace(keys: ApiKey[]): void {
    this.byHash = new Map(keys.map((k) => [k.hash, k]));
  }

  get size(): number {
    return this.byHash.size;
  }

  authenticate(presented: string | undefined): ApiKey | null {
    if (!presented || presented.length > 512) return null;
    const digest = hashKey(presented);
    const found = this.byHash.get(digest);
    if (!found) return null;
    return timingSafeEqual(Buffer.from(found.hash, 'hex'), Buffer.from(digest, 'hex')) ? found : null;
  }
}
