/**
 * No function outside tests/ is longer than 150 lines (issue L): ESLint's max-lines-per-function,
 * configured in eslint.config.mjs and run by `npm run lint`. This checks the configuration: the rule
 * reaches every non-test folder, and only tests/ is exempt (a describe() body is a list of cases).
 */
import { strict as assert } from 'assert';
import { ESLint } from 'eslint';
import { ROOT } from '../local/program';

const MAX_LINES = 150;

/** A function whose body makes it `lines` lines long, first line to closing brace. */
function functionOf(lines: number): string {
  const body = Array.from({ length: lines - 2 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  return `export function f(): void {\n${body}\n}\n`;
}

describe('function length (eslint max-lines-per-function)', function () {
  this.timeout(60_000);
  const eslint = new ESLint({ cwd: ROOT });
  const longFunctionErrors = async (filePath: string, lines: number) => {
    const [result] = await eslint.lintText(functionOf(lines), { filePath });
    return result.messages.filter((m) => m.ruleId === 'max-lines-per-function');
  };

  for (const folder of [
    'components',
    'contracts',
    'state-machines',
    'handlers',
    'local',
    'twin',
    'ops',
    'k8s',
  ])
    it(`${folder}/: a function of ${MAX_LINES + 1} lines is an error, one of ${MAX_LINES} is not`, async () => {
      const over = await longFunctionErrors(`${ROOT}/${folder}/planted.ts`, MAX_LINES + 1);
      assert.equal(over.length, 1);
      assert.equal(over[0].severity, 2);
      assert.deepEqual(await longFunctionErrors(`${ROOT}/${folder}/planted.ts`, MAX_LINES), []);
    });

  it('tests/ is exempt', async () => {
    assert.deepEqual(await longFunctionErrors(`${ROOT}/tests/planted.test.ts`, MAX_LINES * 2), []);
  });
});
