import t from 'tap';
import { ValidationError } from '../../src/errors.ts';
import { parseKeyList } from '../../src/access/api-keys.ts';
import { DEFAULT_SUBMISSION_LIMITS, isSafeFileName, validateSubmission } from '../../src/validation/submission.ts';

const refused = (body: Parameters<typeof validateSubmission>[0]) => {
  try {
    validateSubmission(body);
  } catch (error) {
    if (error instanceof ValidationError) return [error.code, error.statusCode];
    throw error;
  }
  return null;
};

t.test('each rule refuses with its code and status', async (t) => {
  t.same(refused({}), ['empty_code', 400]);
  t.same(refused({ code: '   \n' }), ['empty_code', 400]);
  t.same(refused({ code: 'x', files: [{ content: 'y' }] }), ['code_and_files', 400]);
  t.same(refused({ code: 'x'.repeat(100 * 1024 + 1) }), ['code_too_large', 413]);
  t.same(refused({ code: 'é'.repeat(50_001) }), ['code_too_large', 413], 'bytes and characters are both limited');
  t.same(refused({ code: 'print(1)', stdin: 'x'.repeat(1024 * 1024 + 1) }), ['stdin_too_large', 413]);
  t.same(refused({ code: 'x', args: Array(65).fill('a') }), ['too_many_args', 400]);
  t.same(refused({ code: 'x', args: ['a'.repeat(4097)] }), ['arg_too_large', 400]);
  t.same(refused({ files: Array.from({ length: 33 }, (_, i) => ({ name: `f${i}.py`, content: 'x' })) }), ['too_many_files', 400]);
  t.same(refused({ files: [{ name: 'a.py', content: 'x' }, { name: 'a.py', content: 'y' }] }), ['duplicate_file_name', 400]);
  t.same(refused({ files: [{ content: 'x' }, { content: 'y' }] }), ['missing_file_name', 400]);
  t.same(refused({ code: 'print(1)\0' }), ['invalid_text', 400]);
  t.same(refused({ code: 'x', stdin: 'a\0b' }), ['invalid_text', 400]);
  t.same(refused({ code: 'x', args: ['a\0'] }), ['invalid_arg', 400]);
  for (const name of ['../etc/passwd', '..', '.', 'a/b', '.hidden', 'nul\0.py', '', 'x'.repeat(200)]) {
    t.same(refused({ files: [{ name, content: 'x' }] }), ['unsafe_file_name', 400], JSON.stringify(name));
  }
});

t.test('a valid submission is normalised', async (t) => {
  t.same(validateSubmission({ code: 'print(1)' }), { files: [{ content: 'print(1)' }], stdin: '', args: [] });
  t.ok(isSafeFileName('Main.java'));
  t.ok(isSafeFileName('my_module.py'));
  t.equal(DEFAULT_SUBMISSION_LIMITS.maxFiles, 32);
});

t.test('API_KEYS: keys of at least 16 characters, name:key or name:key:admin', async (t) => {
  t.same(parseKeyList('ops:0123456789abcdef:admin, ci:fedcba9876543210', false), [
    { name: 'ops', key: '0123456789abcdef', admin: true },
    { name: 'ci', key: 'fedcba9876543210', admin: false },
  ]);
  t.throws(() => parseKeyList('short:0123456789abcde', false), /the key of "short" is shorter than 16 characters/);
  t.throws(() => parseKeyList('bad', false), /name:key/);
  t.throws(() => parseKeyList('dev:dev-key-12345', true), /production refuses the default keys/);
});
