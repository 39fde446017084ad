/**
 * No function in the layers listed here is longer than 150 lines, so each can be held in the head
 * (issue L). Lines are counted from the function's first token to its closing brace, nested
 * functions included. Add a directory here once its long functions are split.
 */
import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { ROOT } from '../local/program';

const MAX_LINES = 150;
const CHECKED_DIRECTORIES = ['components', 'contracts'];

/** `file:line name (N lines)` for every function longer than `maxLines`. */
export function longFunctions(fileName: string, source: string, maxLines: number): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(node.end).line;
      const lines = last - first + 1;
      const name =
        node.name?.getText(file) ?? (ts.isConstructorDeclaration(node) ? 'constructor' : '<anonymous>');
      if (lines > maxLines) found.push(`${fileName}:${first + 1} ${name} (${lines} lines)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

describe('function length', () => {
  it('the check finds a function over the limit, and counts nested functions in their parent', () => {
    const body = Array.from({ length: 4 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const source = `function outer() {\n  const inner = () => {\n${body}\n  };\n}\nfunction short() {}\n`;
    assert.deepEqual(longFunctions('x.ts', source, 6), ['x.ts:1 outer (8 lines)']);
  });

  it(`no function in ${CHECKED_DIRECTORIES.join('/, ')}/ is over ${MAX_LINES} lines`, () => {
    const files = CHECKED_DIRECTORIES.flatMap((dir) =>
      (fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[])
        .filter((f) => f.endsWith('.ts'))
        .map((f) => path.join(dir, f)),
    );
    assert.ok(files.includes(path.join('components', 'regional-platform.ts')));
    const long = files.flatMap((f) =>
      longFunctions(f, fs.readFileSync(path.join(ROOT, f), 'utf8'), MAX_LINES),
    );
    assert.deepEqual(long, []);
  });
});
