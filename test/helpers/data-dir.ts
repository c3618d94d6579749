import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/db/database.ts';

let template: Promise<string> | null = null;

/**
 * A new, migrated embedded database directory. Creating one (initdb) takes seconds: the first is made
 * once per test process and copied for every one after it.
 */
export async function freshDataDir(): Promise<string> {
  template ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'braindrill-template-'));
    const database = await openDatabase({ databaseUrl: null, dataDir: dir });
    await database.close();
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  })();
  const source = await template;
  const dir = mkdtempSync(path.join(tmpdir(), 'braindrill-data-'));
  cpSync(source, dir, { recursive: true });
  return dir;
}
