import { ConfigError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { KeyStore } from './key-store.ts';
import { DEFAULT_KEYS, KeyRing, makeKey, parseKeyList, type ApiKey } from './api-keys.ts';

/** How often a node re-reads keys and revocations from the database (revocation reaches every node within this). */
const KEY_REFRESH_MS = 2000;

/**
 * The keys a node accepts: the development defaults (development mode only), `API_KEYS`, and keys
 * created at run time, minus every revoked key. Refreshed from the database every KEY_REFRESH_MS.
 */
export class AccessControl {
  readonly ring = new KeyRing();
  private readonly production: boolean;
  /** The development defaults and `API_KEYS`: accepted unless revoked in the database. */
  private readonly configured: ApiKey[];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: KeyStore,
    options: { production: boolean; apiKeys: string | null },
    private readonly log: Logger,
  ) {
    this.production = options.production;
    this.configured = [
      ...(options.production ? [] : DEFAULT_KEYS.map((d) => makeKey(d.name, d.key, d.admin, 'default'))),
      ...(options.apiKeys ? parseKeyList(options.apiKeys, options.production) : []),
    ];
  }

  /** Loads keys once (start-up fails if production has none), then keeps them fresh. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.ring.size === 0) {
      throw new ConfigError(
        this.production
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
