import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';

/** Resource limits of one step; memory covers the tmpfs too (its pages are charged to the container). */
export interface Limits {
  cpus: number;
  memoryMb: number;
  timeoutMs: number;
  pids: number;
  tmpfsMb: number;
  fileSizeMb: number;
  nofile: number;
}

export interface CompileStep {
  argv: string[];
  timeoutMs: number;
  memoryMb: number;
  pids: number;
}

/** One entry of config/languages.json: adding a language is adding one of these (docs/ADD_LANGUAGE.md). */
export interface Language {
  id: string;
  name: string;
  aliases: string[];
  version: string;
  /** Default entry file name. */
  file: string;
  /** Regex whose group 1 + the extension of `file` names the entry file (Java: the public class). */
  filePattern: string | null;
  compile: CompileStep | null;
  /**
   * `warm`: an interpreter the supervisor starts with the container, before the job is known, that then
   * runs the job as `argv` would (images/runtime/warm-*): the run step skips the interpreter's start-up.
   * Null: the run step starts `argv` cold.
   */
  run: { argv: string[]; warm: string[] | null };
  env: string[];
  limits: Limits;
  limitsNote: string | null;
  test: { code: string; stdout: string };
}

/** Language ids and aliases: what may appear in `/lang/:language`. */
const LANGUAGE_ID = /^[a-z0-9+#.-]{1,32}$/;

const LIMIT_RANGES: Record<keyof Limits, [number, number]> = {
  cpus: [0.1, 64],
  memoryMb: [8, 65536],
  timeoutMs: [100, 600_000],
  pids: [4, 4096],
  tmpfsMb: [1, 65536],
  fileSizeMb: [1, 65536],
  nofile: [16, 65536],
};

class Checker {
  constructor(private readonly where: string) {}

  fail(message: string): never {
    throw new ConfigError(`${this.where}: ${message}`);
  }

  record(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(`"${field}" must be an object`);
    return value as Record<string, unknown>;
  }

  string(value: unknown, field: string): string {
    if (typeof value !== 'string' || value === '') this.fail(`"${field}" must be a non-empty string`);
    return value;
  }

  nullableString(value: unknown, field: string): string | null {
    return value === null || value === undefined ? null : this.string(value, field);
  }

  strings(value: unknown, field: string, nonEmpty = false): string[] {
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string') || (nonEmpty && value.length === 0)) {
      this.fail(`"${field}" must be ${nonEmpty ? 'a non-empty' : 'an'} array of strings`);
    }
    return value as string[];
  }

  number(value: unknown, field: string, [min, max]: [number, number]): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      this.fail(`"${field}" must be a number between ${min} and ${max}`);
    }
    return value;
  }
}

function parseLanguage(raw: unknown, index: number): Language {
  const entry = new Checker(`config/languages.json[${index}]`).record(raw, 'entry');
  const check = new Checker(`language "${String(entry.id ?? index)}"`);
  const id = check.string(entry.id, 'id');
  const aliases = check.strings(entry.aliases ?? [], 'aliases');
  for (const name of [id, ...aliases]) {
    if (!LANGUAGE_ID.test(name)) check.fail(`"${name}" may only contain a-z 0-9 + # . - (1-32 characters)`);
  }
  const file = check.string(entry.file, 'file');
  if (file.includes('/') || file.startsWith('.')) check.fail('"file" must be a plain file name');
  const filePattern = check.nullableString(entry.filePattern, 'filePattern');
  if (filePattern !== null) {
    try {
      new RegExp(filePattern);
    } catch (error) {
      check.fail(`"filePattern" is not a valid regular expression: ${String(error)}`);
    }
  }
  const limitsRaw = check.record(entry.limits, 'limits');
  const limits = Object.fromEntries(
    (Object.keys(LIMIT_RANGES) as (keyof Limits)[]).map((key) => [key, check.number(limitsRaw[key], `limits.${key}`, LIMIT_RANGES[key])]),
  ) as unknown as Limits;
  if (limits.tmpfsMb >= limits.memoryMb) check.fail('"limits.tmpfsMb" must be below "limits.memoryMb": tmpfs pages count as memory');
  let compile: CompileStep | null = null;
  if (entry.compile !== null && entry.compile !== undefined) {
    const c = check.record(entry.compile, 'compile');
    compile = {
      argv: check.strings(c.argv, 'compile.argv', true),
      timeoutMs: check.number(c.timeoutMs, 'compile.timeoutMs', LIMIT_RANGES.timeoutMs),
      memoryMb: check.number(c.memoryMb, 'compile.memoryMb', LIMIT_RANGES.memoryMb),
      pids: check.number(c.pids ?? limits.pids, 'compile.pids', LIMIT_RANGES.pids),
    };
  }
  const run = check.record(entry.run, 'run');
  const warm = run.warm === undefined || run.warm === null ? null : check.strings(run.warm, 'run.warm', true);
  if (warm && compile) check.fail('"run.warm" is only for languages without a compile step (the compile step would end the waiting interpreter)');
  const env = check.strings(entry.env ?? [], 'env');
  for (const pair of env) if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(pair)) check.fail(`env entry "${pair}" must be KEY=VALUE`);
  const test = check.record(entry.test, 'test');
  if (typeof test.stdout !== 'string') check.fail('"test.stdout" must be a string');
  return {
    id,
    name: check.string(entry.name, 'name'),
    aliases,
    version: check.string(entry.version, 'version'),
    file,
    filePattern,
    compile,
    run: { argv: check.strings(run.argv, 'run.argv', true), warm },
    env,
    limits,
    limitsNote: check.nullableString(entry.limitsNote, 'limitsNote'),
    test: { code: check.string(test.code, 'test.code'), stdout: test.stdout as string },
  };
}

/** Parses and validates language definitions; names are unique across ids and aliases. */
export function parseLanguages(raw: unknown): Language[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new ConfigError('config/languages.json must be a non-empty array');
  const languages = raw.map(parseLanguage);
  const seen = new Map<string, string>();
  for (const language of languages) {
    for (const name of [language.id, ...language.aliases]) {
      const owner = seen.get(name);
      if (owner) throw new ConfigError(`language name "${name}" is used by both "${owner}" and "${language.id}"`);
      seen.set(name, language.id);
    }
  }
  return languages;
}

export function loadLanguages(file: string): Language[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read languages from ${file} (LANGUAGES_FILE): ${String(error)}`);
  }
  try {
    return parseLanguages(JSON.parse(text));
  } catch (error) {
    if (error instanceof SyntaxError) throw new ConfigError(`${file} is not valid JSON: ${error.message}`);
    throw error;
  }
}
