import type { PGliteOptions } from '@electric-sql/pglite';

/**
 * The embedded PostgreSQL's settings. PostgreSQL's default shared_buffers (128 MB) would all become
 * resident in this process over time; the job tables' hot pages fit in far less.
 */
export const PGLITE_OPTIONS: PGliteOptions = {
  postgresqlconf: 'shared_buffers = 16MB\n',
};
