/**
 * Creates an embedded database in an empty directory, then exits. It runs as a short-lived child
 * process (see openPGlite): PGlite's initdb leaves ~450 MB in the process that ran it, which the
 * long-running node would otherwise keep for its whole life.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_OPTIONS } from './pglite-options.ts';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: pglite-init DIR\n');
  process.exit(2);
}
const pglite = await PGlite.create(dir, PGLITE_OPTIONS);
await pglite.close();
