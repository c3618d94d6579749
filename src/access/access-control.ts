import { ConfigError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { DEFAULT_KEYS, KeyRing, makeKey, parseKeyList, type ApiKey, type ConfiguredKey } from './api-keys.ts';
import type { KeyStore } from './key-store.ts';

/** How often a node re-reads keys and revocations from the database (revocation reaches every node within this). */
const KEY_REFRESH_MS = 2000;

export interface AccessControlOptions {
  production: boolean;
  /** The development keys are accepted only by a development node bound to loopback. */
  loopbackOnly: boolean;
  /** `API_KEYS`. */
  apiKeys: string | null;
}

/**
 * The keys a node accepts: the development defaults (development mode, on loopback only), `API_KEYS`, and
 * keys created at run time, minus every revoked key. Refreshed from the database every KEY_REFRESH_MS.
 */
export class AccessControl {
  readonly ring = new KeyRing();
  /** The development defaults and `API_KEYS`, checked at construction; their ids need the installation's secret. */
  private readonly declared: (ConfiguredKey & { source: 'default' | 'env' })[];
  /** The same as keys, once start() has read the secret: accepted unless revoked in the database. */
  private configured: ApiKey[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: KeyStore,
    private readonly options: AccessControlOptions,
    private readonly log: Logger,
  ) {
    const development = !options.production && options.loopbackOnly;
    this.declared = [
      ...(development ? DEFAULT_KEYS.map((d) => ({ ...d, source: 'default' as const })) : []),
      ...(options.apiKeys ? parseKeyList(options.apiKeys, options.production).map((k) => ({ ...k, source: 'env' as const })) : []),
    ];
  }

  /** Loads keys once (start-up fails if none is active), then keeps them fresh. */
  async start(): Promise<void> {
    const secret = await this.store.keyIdSecret();
    this.configured = this.declared.map((k) => makeKey(k.name, k.key, k.admin, k.source, secret));
    await this.refresh();
    if (this.ring.size === 0) {
      throw new ConfigError(
        this.options.production
          ? 'no API keys: production mode does not use the development keys. Set API_KEYS=name:key[:admin],… (at least one admin key to manage the rest).'
          : 'no API keys are active.',
      );
    }
    this.timer = setInterval(() => this.refresh().catch((error: unknown) => this.log.warn({ err: error }, 'could not refresh API keys; keeping the last set')), KEY_REFRESH_MS);
    this.timer.unref();
  }

  async refresh(): Promise<void> {
    const { active, revoked } = await this.store.snapshot();
    this.ring.replace([...this.configured, ...active].filter((k) => !revoked.has(k.hash)));
  }

  /** The development defaults and `API_KEYS` (never their secret), for the admin listing. */
  get configuredKeys(): readonly Pick<ApiKey, 'id' | 'name' | 'admin' | 'source'>[] {
    return this.configured.map(({ id, name, admin, source }) => ({ id, name, admin, source }));
  }

  /** A key by id among the configured and database keys, revoked or not. */
  async find(id: string): Promise<ApiKey | undefined> {
    const configured = this.configured.find((k) => k.id === id);
    if (configured) return configured;
    const { active } = await this.store.snapshot();
    return active.find((k) => k.id === id);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
