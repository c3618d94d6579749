import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * bench/RESULTS.md: the execution benchmark (`npm run bench`, no heading of its own), then one section per
 * other benchmark, each starting with its own `## ` heading (`npm run bench:jobs`, each `npm run
 * bench:versus` comparison). Each benchmark replaces the section with its heading and keeps the others.
 */
export const RESULTS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'RESULTS.md');
export const HEADINGS = { jobs: '## Jobs API (`npm run bench:jobs`)' } as const;

/** The file cut at its `## ` headings: the first part is the main benchmark's. */
function sections(): string[] {
  const text = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, 'utf8') : '';
  return text.split(/^(?=## )/m);
}

/** Replaces the section that starts with the same `## ` heading as `text` (or the main part, for text without one), keeping the others. */
export function writeResults(text: string): void {
  const parts = sections();
  const heading = text.startsWith('## ') ? text.slice(0, text.indexOf('\n')) : null;
  const index = heading === null ? 0 : parts.findIndex((part) => part.startsWith(`${heading}\n`));
  if (index >= 0 && (heading !== null || parts.length > 0)) parts[index] = text;
  else parts.push(text);
  writeFileSync(RESULTS_FILE, `${parts.map((part) => part.trim()).filter(Boolean).join('\n\n')}\n`);
}
