import { LocalWorkspace, type Stack } from '@pulumi/pulumi/automation';
import type { StackOps } from './commands/failover';

/**
 * StackOps with the Pulumi Automation API: the program in `workDir` (this repository), its
 * stacks selected by name. Needs the Pulumi CLI on the PATH and a logged-in backend.
 */
export function automationStackOps(workDir: string): StackOps {
  const cache = new Map<string, Promise<Stack>>();
  const select = (stackName: string) => {
    let stack = cache.get(stackName);
    if (!stack) {
      stack = LocalWorkspace.selectStack({ stackName, workDir });
      cache.set(stackName, stack);
    }
    return stack;
  };
  return {
    async getConfig(stackName, key) {
      const stack = await select(stackName);
      try {
        return (await stack.getConfig(key)).value;
      } catch {
        return undefined; // not set
      }
    },
    async setConfig(stackName, key, value) {
      await (await select(stackName)).setConfig(key, { value });
    },
    async up(stackName, onOutput) {
      const result = await (await select(stackName)).up({ onOutput });
      if (result.summary.result !== 'succeeded')
        throw new Error(`pulumi up -s ${stackName} ended ${result.summary.result}`);
    },
    async outputs(stackName) {
      const outputs = await (await select(stackName)).outputs();
      return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value]));
    },
  };
}
