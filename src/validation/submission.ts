import { ValidationError } from '../errors.ts';
import type { SourceFile, Submission } from '../sandbox/execution.ts';

/** Input limits of braindrill's API, plus what multi-file submissions need. */
export interface SubmissionLimits {
  maxCodeBytes: number;
  maxCodeChars: number;
  maxFiles: number;
  maxStdinBytes: number;
  maxArgs: number;
  maxArgBytes: number;
}

export const DEFAULT_SUBMISSION_LIMITS: SubmissionLimits = {
  maxCodeBytes: 100 * 1024,
  maxCodeChars: 50_000,
  maxFiles: 32,
  maxStdinBytes: 1024 * 1024,
  maxArgs: 64,
  maxArgBytes: 4096,
};

/** The JSON body accepted by POST /lang/:language, POST /jobs and POST /api/runs. */
export interface SubmissionBody {
  code?: string;
  files?: SourceFile[];
  stdin?: string;
  args?: string[];
}

const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;

/** A safe file name: no path, no NUL, no leading dot (so neither `.` nor `..`), portable characters. */
export function isSafeFileName(name: string): boolean {
  return FILE_NAME.test(name);
}

/**
 * Checks a submission against the limits and returns it normalised (files, stdin, args). Each refusal
 * names its rule in `error.code`.
 */
export function validateSubmission(body: SubmissionBody, limits: SubmissionLimits = DEFAULT_SUBMISSION_LIMITS): Submission {
  if (body.code !== undefined && body.files !== undefined) {
    throw new ValidationError('code_and_files', 'Send either "code" or "files", not both.');
  }
  const files: SourceFile[] = body.files ?? (body.code !== undefined ? [{ content: body.code }] : []);
  if (files.length === 0) throw new ValidationError('empty_code', 'Code is required: send a non-empty "code" or "files".');
  if (files.length > limits.maxFiles) throw new ValidationError('too_many_files', `At most ${limits.maxFiles} files may be sent.`);
  const names = new Set<string>();
  let bytes = 0;
  let chars = 0;
  files.forEach((file, index) => {
    if (file.name !== undefined) {
      if (!isSafeFileName(file.name)) {
        throw new ValidationError('unsafe_file_name', `File name ${JSON.stringify(file.name.slice(0, 64))} is not allowed: use letters, digits, _ . + - (no path, no leading dot).`);
      }
      if (names.has(file.name)) throw new ValidationError('duplicate_file_name', `File name "${file.name}" appears twice.`);
      names.add(file.name);
    } else if (index > 0) {
      throw new ValidationError('missing_file_name', `files[${index}] needs a "name"; only the entry file (the first) may omit it.`);
    }
    bytes += Buffer.byteLength(file.content, 'utf8');
    chars += [...file.content].length;
  });
  if (files.some((f) => f.content.includes('\0'))) throw new ValidationError('invalid_text', 'Code may not contain NUL characters.');
  if (files.every((f) => f.content.trim() === '')) throw new ValidationError('empty_code', 'Code is empty.');
  if (bytes > limits.maxCodeBytes) {
    throw new ValidationError('code_too_large', `Code is ${bytes} bytes; the limit is ${limits.maxCodeBytes} bytes.`, 413);
  }
  if (chars > limits.maxCodeChars) {
    throw new ValidationError('code_too_large', `Code is ${chars} characters; the limit is ${limits.maxCodeChars}.`, 413);
  }
  const stdin = body.stdin ?? '';
  if (Buffer.byteLength(stdin, 'utf8') > limits.maxStdinBytes) {
    throw new ValidationError('stdin_too_large', `stdin is larger than ${limits.maxStdinBytes} bytes.`, 413);
  }
  if (stdin.includes('\0')) throw new ValidationError('invalid_text', 'stdin may not contain NUL characters.');
  const args = body.args ?? [];
  if (args.length > limits.maxArgs) throw new ValidationError('too_many_args', `At most ${limits.maxArgs} args may be sent.`);
  for (const arg of args) {
    if (Buffer.byteLength(arg, 'utf8') > limits.maxArgBytes) throw new ValidationError('arg_too_large', `An arg is larger than ${limits.maxArgBytes} bytes.`);
    if (arg.includes('\0')) throw new ValidationError('invalid_arg', 'args may not contain NUL characters.');
  }
  return { files, stdin, args };
}

/**
 * A dangerous-pattern list, as configurable policy (BLOCKED_PATTERNS). It is not the security
 * boundary — the sandbox is — but some operators want obvious abuse refused early.
 */
export function checkBlockedPatterns(submission: Submission, patterns: readonly string[]): void {
  for (const file of submission.files) {
    const lower = file.content.toLowerCase();
    const found = patterns.find((p) => lower.includes(p.toLowerCase()));
    if (found) throw new ValidationError('blocked_pattern', `The code contains "${found}", which this server refuses (BLOCKED_PATTERNS).`);
  }
}
