import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { ROOT_DIR } from '../../src/settings.ts';

// The shape docs/ARCHITECTURE.md promises, checked on the source itself: each layer imports only the
// layers below it, the import graph has no cycle, every file name under src/ is used once, and no
// function runs past about 100 lines.

/** Top to bottom, as docs/ARCHITECTURE.md lists them. A file may import its own layer and any below it. */
const LAYERS = ['main.ts', 'node', 'http', 'cluster', 'actors', 'bus', 'jobs', 'validation', 'access', 'db', 'sandbox', 'redis', 'languages', 'observability', 'settings.ts', 'errors.ts'];
const MAX_FUNCTION_LINES = 100;

const SRC = path.join(ROOT_DIR, 'src');
const files = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => path.join(SRC, f));
const layerOf = (file: string) => LAYERS.indexOf(path.relative(SRC, file).split(path.sep)[0]!);

/** Relative imports (`import … from './x.ts'`, `export … from`, `import('./x.ts')`), resolved. */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    const specifier =
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)
        ? node.moduleSpecifier.text
        : ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])
          ? node.arguments[0].text
          : null;
    if (specifier?.startsWith('.')) found.push(path.resolve(path.dirname(file), specifier));
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const graph = new Map(files.map((file) => [file, importsOf(file)]));

t.test('every file is in a layer', async (t) => {
  for (const file of files) t.not(layerOf(file), -1, path.relative(ROOT_DIR, file));
});

t.test('no layer imports a layer above it', async (t) => {
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    for (const target of imports) {
      if (layerOf(target) < layerOf(file)) upward.push(`${path.relative(SRC, file)} → ${path.relative(SRC, target)}`);
    }
  }
  t.same(upward, [], 'imports that go up');
});

t.test('the import graph has no cycle', async (t) => {
  const cycles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...stack.slice(stack.indexOf(file)), file].map((f) => path.relative(SRC, f)).join(' → '));
      return;
    }
    state.set(file, 'visiting');
    stack.push(file);
    for (const target of graph.get(file) ?? []) visit(target);
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) visit(file);
  t.same(cycles, []);
});

t.test('every file name under src/ is used once (index.ts aside)', async (t) => {
  const byName = new Map<string, string[]>();
  for (const file of files) byName.set(path.basename(file), [...(byName.get(path.basename(file)) ?? []), path.relative(SRC, file)]);
  const repeated = [...byName].filter(([name, paths]) => name !== 'index.ts' && paths.length > 1);
  t.same(repeated, []);
});

t.test(`no function runs past ${MAX_FUNCTION_LINES} lines`, async (t) => {
  const long: string[] = [];
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const lines = source.getLineAndCharacterOfPosition(node.end).line - source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
        // An actor's handler is one function: its message cases are counted with it.
        if (lines > MAX_FUNCTION_LINES) long.push(`${path.relative(SRC, file)}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1} (${lines} lines)`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  t.same(long, []);
});
