import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * bench/RESULTS.md: the execution benchmark (`npm run bench`), then the jobs API's section
 * (`npm run bench:jobs`), then the before/after comparison (`npm run bench:versus`). Each benchmark
 * replaces its own part and keeps the others.
 */
export const RESULTS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'RESULTS.md');
export const HEADINGS = { jobs: '## Jobs API (`npm run bench:jobs`)', versus: '## Before and after (`npm run bench:versus`)' } as const;
type Part = 'main' | keyof typeof HEADINGS;
const ORDER: Part[] = ['main', 'jobs', 'versus'];

function current(): Record<Part, string> {
  const text = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, 'utf8') : '';
  const starts = ORDER.map((part) => ({ part, at: part === 'main' ? 0 : text.indexOf(HEADINGS[part]) })).filter(({ at }) => at >= 0).sort((a, b) => a.at - b.at);
  const parts: Record<Part, string> = { main: '', jobs: '', versus: '' };
  starts.forEach(({ part, at }, index) => (parts[part] = text.slice(at, starts[index + 1]?.at ?? text.length)));
  return parts;
}

/** Replaces one part, keeping the others as their own benchmarks wrote them. */
export function writeResults(part: Part, text: string): void {
  const parts = current();
  parts[part] = text;
  writeFileSync(RESULTS_FILE, `${ORDER.map((p) => parts[p].trim()).filter(Boolean).join('\n\n')}\n`);
}
