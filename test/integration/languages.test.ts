import t from 'tap';
import { startEngine, run } from '../helpers/engine.ts';

const engine = await startEngine();
t.teardown(() => engine.close());

const { languages } = (await (await engine.request('/languages')).json()) as { languages: { id: string; aliases: string[] }[] };

t.test('hello world in every configured language, through text/plain as in the seed', async (t) => {
  const registry = (await import('../../src/languages/language.ts')).loadLanguages;
  const { ROOT_DIR } = await import('../../src/settings.ts');
  const defs = registry(`${ROOT_DIR}/config/languages.json`);
  t.equal(defs.length, languages.length, 'GET /languages lists every configured language');
  for (const language of defs) {
    t.test(language.id, async (t) => {
      const response = await engine.request(`/lang/${language.id}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: language.test.code,
      });
      const text = await response.text();
      t.equal(response.status, 200);
      t.equal(response.headers.get('x-status'), 'completed', `${language.id}: ${text}`);
      t.equal(response.headers.get('x-reason'), 'none');
      t.equal(response.headers.get('x-exit-code'), '0');
      t.match(response.headers.get('x-execution-time-ms'), /^\d+$/);
      t.match(response.headers.get('content-type'), /^text\/plain/);
      t.equal(text, language.test.stdout);
    });
  }
});

t.test('aliases reach the same language', async (t) => {
  for (const alias of ['py', 'js', 'node', 'ts', 'c++', 'golang', 'sh']) {
    const response = await engine.request(`/lang/${encodeURIComponent(alias)}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: alias === 'py' ? 'print(6*7)' : alias === 'js' || alias === 'node' ? 'console.log(6*7)' : alias === 'ts' ? 'const n: number = 6 * 7; console.log(n);' : alias === 'c++' ? '#include <iostream>\nint main(){std::cout<<6*7<<"\\n";}' : alias === 'golang' ? 'package main\nimport "fmt"\nfunc main(){fmt.Println(6*7)}' : 'echo $((6*7))' });
    t.equal(await response.text(), '42\n', alias);
  }
});

t.test('a compile error is reported with reason compile_error and the compiler message', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['c', 'int main() { return undefined_name; }', /undefined_name/],
    ['java', 'public class Broken { public static void main(String[] a) { int x = "s"; } }', /incompatible types|error:/],
    ['rust', 'fn main() { let x: i32 = "s"; }', /mismatched types|error/],
  ];
  for (const [language, code, message] of cases) {
    const result = await run(engine, language, { code });
    t.equal(result.httpStatus, 200, language);
    t.equal(result.status, 'failed', language);
    t.equal(result.reason, 'compile_error', language);
    t.match(result.stderr, message, `${language} shows the compiler's message`);
    t.equal(result.stdout, '');
  }
});
