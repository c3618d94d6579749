import type { PGlite } from '@electric-sql/pglite';
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

const BYTEA = 17;
/** bytea as node Buffers (like node-postgres), hex-coded in one pass instead of PGlite's per-byte default. */
const parsers = { [BYTEA]: (value: string) => Buffer.from(value.slice(2), 'hex') };
const serializers = {
  [BYTEA]: (value: unknown) => {
    if (!(value instanceof Uint8Array)) throw new TypeError('bytea parameter must be a Buffer or Uint8Array');
    return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  },
};

export interface PGliteDialectConfig {
  /** An open PGlite instance, or a function that opens one when Kysely first needs it. */
  pglite: PGlite | (() => Promise<PGlite>);
  /** Close the PGlite instance when the Kysely instance is destroyed (default true). */
  closeOnDestroy?: boolean;
}

/** Kysely over embedded PGlite: PostgreSQL SQL, one in-process connection. */
export class PGliteDialect implements Dialect {
  constructor(private readonly config: PGliteDialectConfig) {}
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.config);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

/**
 * PGlite is a single session: a transaction's statements must not interleave with anyone else's.
 * The driver therefore hands its one connection to one holder at a time (FIFO queue).
 */
class PGliteDriver implements Driver {
  #pglite: PGlite | undefined;
  #connection: PGliteConnection | undefined;
  #busy = false;
  readonly #waiters: Array<() => void> = [];

  constructor(private readonly config: PGliteDialectConfig) {}

  async init(): Promise<void> {
    const source = this.config.pglite;
    this.#pglite = typeof source === 'function' ? await source() : source;
    await this.#pglite.waitReady;
    this.#connection = new PGliteConnection(this.#pglite);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#busy) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#busy = true;
    if (!this.#connection) {
      this.#release();
      throw new Error('the PGlite driver has been destroyed');
    }
    return this.#connection;
  }

  async releaseConnection(): Promise<void> {
    this.#release();
  }

  #release(): void {
    const next = this.#waiters.shift();
    if (next) next(); // ownership passes straight to the next waiter; #busy stays true
    else this.#busy = false;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let sql = 'begin';
    if (settings.isolationLevel || settings.accessMode) {
      sql = 'start transaction';
      if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`;
      if (settings.accessMode) sql += ` ${settings.accessMode}`;
    }
    await connection.executeQuery(CompiledQuery.raw(sql));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async destroy(): Promise<void> {
    const pglite = this.#pglite;
    this.#pglite = undefined;
    this.#connection = undefined;
    if (pglite && this.config.closeOnDestroy !== false && !pglite.closed) await pglite.close();
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly pglite: PGlite) {}

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.pglite.query<R>(compiledQuery.sql, [...compiledQuery.parameters], { rowMode: 'object', parsers, serializers });
    const writes = result.command === 'INSERT' || result.command === 'UPDATE' || result.command === 'DELETE' || result.command === 'MERGE';
    return {
      rows: result.rows,
      ...(writes ? { numAffectedRows: BigInt(result.rowCount ?? result.affectedRows ?? 0) } : {}),
    };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported by the PGlite dialect');
  }
}
