/**
 * Every field of every `*Args` interface (or object type alias) in the repository has a JSDoc line,
 * and every optional field says what happens when it is left out (`@default`). Read with the
 * TypeScript compiler API: syntax only, no type checking, so it takes about a second.
 */
import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { ROOT } from '../local/program';

const SKIPPED_DIRECTORIES = new Set(['node_modules', '.venv', '.git', 'bin', 'dist', 'reports']);

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIPPED_DIRECTORIES.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(full, out);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** The JSDoc blocks attached to a member: text and tags. */
function jsDocOf(member: ts.Node): { text: string; tags: string[] } {
  const docs = ts.getJSDocCommentsAndTags(member).filter(ts.isJSDoc);
  const text = docs.map((d) => ts.getTextOfJSDocComment(d.comment) ?? '').join(' ');
  const tags = docs.flatMap((d) => (d.tags ?? []).map((t) => t.tagName.text));
  return { text: text.trim(), tags };
}

/** One problem per field: `file:line Interface.field: what is missing`. */
export function undocumentedArgsFields(fileName: string, source: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const problems: string[] = [];
  const check = (owner: string, members: ts.NodeArray<ts.TypeElement>) => {
    for (const member of members) {
      if (!ts.isPropertySignature(member)) continue;
      const field = `${owner}.${member.name.getText(file)}`;
      const where = `${fileName}:${file.getLineAndCharacterOfPosition(member.getStart(file)).line + 1}`;
      const { text, tags } = jsDocOf(member);
      if (!text) problems.push(`${where} ${field}: no JSDoc line`);
      if (member.questionToken && !tags.includes('default'))
        problems.push(`${where} ${field}: optional without @default (say what leaving it out means)`);
    }
  };
  const visit = (node: ts.Node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text.endsWith('Args'))
      check(node.name.text, node.members);
    if (ts.isTypeAliasDeclaration(node) && node.name.text.endsWith('Args') && ts.isTypeLiteralNode(node.type))
      check(node.name.text, node.type.members);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return problems;
}

describe('*Args fields are documented', () => {
  it('the check finds an undocumented field and an optional field without @default', () => {
    const problems = undocumentedArgsFields(
      'example.ts',
      [
        'export interface ExampleArgs {',
        '  /** Documented. */',
        '  readonly documented: string;',
        '  readonly bare: string;',
        '  /** Optional, but what does leaving it out do? */',
        '  readonly optional?: number;',
        '  /**',
        '   * Optional and explained.',
        '   * @default 30',
        '   */',
        '  readonly explained?: number;',
        '}',
        'interface Unrelated { readonly ignored: string }',
      ].join('\n'),
    );
    assert.deepEqual(problems, [
      'example.ts:4 ExampleArgs.bare: no JSDoc line',
      'example.ts:6 ExampleArgs.optional: optional without @default (say what leaving it out means)',
    ]);
  });

  it('every *Args field in the repository has a JSDoc line, and every optional one a @default', () => {
    const files = sourceFiles(ROOT);
    assert.ok(files.some((f) => f.endsWith(path.join('components', 'regional-platform.ts'))));
    const problems = files.flatMap((file) =>
      undocumentedArgsFields(path.relative(ROOT, file), fs.readFileSync(file, 'utf8')),
    );
    assert.deepEqual(problems, []);
  });
});
