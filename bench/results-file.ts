import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/RESULTS.md: the execution benchmark (`npm run bench`), then the jobs API's section (`npm run bench:jobs`). */
export const RESULTS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'RESULTS.md');
export const JOBS_HEADING = '## Jobs API (`npm run bench:jobs`)';

function current(): { main: string; jobs: string } {
  const text = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, 'utf8') : '';
  const at = text.indexOf(JOBS_HEADING);
  return at < 0 ? { main: text, jobs: '' } : { main: text.slice(0, at), jobs: text.slice(at) };
}

/** Replaces one of the two parts, keeping the other as it was written by its own benchmark. */
export function writeResults(part: 'main' | 'jobs', text: string): void {
  const parts = current();
  parts[part] = text;
  writeFileSync(RESULTS_FILE, `${parts.main.trimEnd()}\n\n${parts.jobs.trimEnd()}\n`.replace(/^\n+/, ''));
}
