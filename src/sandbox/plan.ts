import path from 'node:path';
import type { Language } from '../languages/language.ts';
import type { ExecutionPlan, Submission } from './execution.ts';

export interface PlanOptions {
  outputKeepBytes: number;
  outputDrainFactor: number;
}

/** The entry file's name: given by the client, else the language's pattern (Java's public class), else its default. */
export function entryFileName(language: Language, source: string, given?: string): string {
  if (given) return given;
  if (language.filePattern) {
    const match = new RegExp(language.filePattern).exec(source);
    if (match?.[1]) return `${match[1]}${path.extname(language.file)}`;
  }
  return language.file;
}

/** Expands `{file}`, `{stem}` and `{sources}` (every file with the entry's extension, entry first). */
export function expandArgv(argv: readonly string[], fileNames: readonly string[]): string[] {
  const entry = fileNames[0] ?? '';
  const extension = path.extname(entry);
  const stem = entry.slice(0, entry.length - extension.length);
  const sources = fileNames.filter((name) => path.extname(name) === extension);
  return argv.flatMap((arg) =>
    arg === '{sources}' ? sources : [arg.replaceAll('{file}', entry).replaceAll('{stem}', stem)],
  );
}

/** The container memory while compiling: the compiler's figure, lowered to the run figure afterwards. */
export function initialMemoryMb(language: Language): number {
  return language.compile ? Math.max(language.compile.memoryMb, language.limits.memoryMb) : language.limits.memoryMb;
}

export function planExecution(id: string, language: Language, submission: Submission, options: PlanOptions): ExecutionPlan {
  const [entry, ...rest] = submission.files;
  if (!entry) throw new RangeError('a submission needs at least one file');
  const files = [
    { name: entryFileName(language, entry.content, entry.name), content: Buffer.from(entry.content, 'utf8') },
    ...rest.map((file, index) => ({ name: file.name ?? `file${index + 1}`, content: Buffer.from(file.content, 'utf8') })),
  ];
  const names = files.map((f) => f.name);
  return {
    id,
    language,
    files,
    compile: language.compile
      ? {
          argv: expandArgv(language.compile.argv, names),
          timeoutMs: language.compile.timeoutMs,
          memoryMb: language.compile.memoryMb,
          pids: language.compile.pids,
        }
      : null,
    run: { argv: [...expandArgv(language.run.argv, names), ...submission.args], timeoutMs: language.limits.timeoutMs, warm: language.run.warm !== null },
    stdin: Buffer.from(submission.stdin, 'utf8'),
    env: language.env,
    limits: language.limits,
    outputKeepBytes: options.outputKeepBytes,
    outputMaxBytes: options.outputKeepBytes * options.outputDrainFactor,
  };
}
