import { createHash, timingSafeEqual } from 'node:crypto';
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

export function keyId(hash: string): string {
  return `key_${hash.slice(0, 16)}`;
}

export function makeKey(name: string, key: string, admin: boolean, source: ApiKey['source']): ApiKey {
  const hash = hashKey(key);
  return { id: keyId(hash), name, hash, admin, source };
}

/**
 * Parses `API_KEYS`: comma-separated `name:key` or `name:key:admin`. Keys must be at least 16
 * characters; production refuses the development keys.
 */
export function parseKeyList(raw: string, production: boolean): ApiKey[] {
  const keys: ApiKey[] = [];
  for (const entry of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, key, role, ...rest] = entry.split(':');
    if (!name || !key || rest.length > 0 || (role !== undefined && role !== 'admin')) {
      throw new ConfigError('API_KEYS entries must be name:key or name:key:admin, separated by commas.');
    }
    if (DEFAULT_KEYS.some((d) => d.key === key) && production) {
      throw new ConfigError(`API_KEYS contains the development key of "${name}"; production refuses the default keys. Generate your own (e.g. openssl rand -hex 24).`);
    }
    if (key.length < 12) throw new ConfigError(`API_KEYS: the key of "${name}" is shorter than 12 characters.`);
    keys.push(makeKey(name, key, role === 'admin', 'env'));
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
