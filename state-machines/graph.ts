import type { State, StateMachineDefinition, SubMachine } from './asl';

export interface GraphOptions {
  /** Task state names allowed to have no Retry. */
  allowNoRetry?: string[];
  /** Task state names allowed to have no Catch. */
  allowNoCatch?: string[];
}

/** Every state this one can transition to (Next, Default, Choices, Catch). */
export function successors(state: State): string[] {
  const out: string[] = [];
  if ('Next' in state && typeof state.Next === 'string') out.push(state.Next);
  if (state.Type === 'Choice') {
    for (const c of state.Choices) out.push(c.Next);
    if (state.Default !== undefined) out.push(state.Default);
  }
  if ('Catch' in state && state.Catch) for (const c of state.Catch) out.push(c.Next);
  return out;
}

/** Nested machines of a Map / Parallel state. */
export function childMachines(state: State): SubMachine[] {
  if (state.Type === 'Map') return [state.ItemProcessor];
  if (state.Type === 'Parallel') return state.Branches;
  return [];
}

/**
 * Structural checks a deployable workflow must pass; returns human-readable problems (empty = OK).
 * Pure: used by every workflow test next to asl-validator, which stops at its first schema error.
 */
export function checkGraph(definition: StateMachineDefinition, opts: GraphOptions = {}): string[] {
  const problems: string[] = [];
  const noRetry = new Set(opts.allowNoRetry ?? []);
  const noCatch = new Set(opts.allowNoCatch ?? []);
  const seenNames = new Map<string, string>();

  const checkMachine = (m: SubMachine, scope: string): void => {
    const names = Object.keys(m.States ?? {});
    if (names.length === 0) problems.push(`${scope}: no states`);
    if (!(m.StartAt in (m.States ?? {}))) problems.push(`${scope}: StartAt "${m.StartAt}" does not exist`);

    for (const [name, state] of Object.entries(m.States ?? {})) {
      const where = `${scope}${name}`;
      // The local harness (and AWS) key overrides by state name, so names must be unique machine-wide.
      const prior = seenNames.get(name);
      if (prior !== undefined) problems.push(`${where}: state name also used at ${prior}`);
      else seenNames.set(name, where);

      for (const target of successors(state)) {
        if (!(target in m.States)) problems.push(`${where}: transition to missing state "${target}"`);
      }

      const hasNext = 'Next' in state && state.Next !== undefined;
      const hasEnd = 'End' in state && state.End === true;
      switch (state.Type) {
        case 'Succeed':
        case 'Fail':
          if (hasNext || hasEnd) problems.push(`${where}: ${state.Type} must not have Next/End`);
          break;
        case 'Choice':
          if (hasNext || hasEnd) problems.push(`${where}: Choice must not have Next/End`);
          if (state.Choices.length === 0) problems.push(`${where}: Choice has no rules`);
          break;
        default:
          if (hasNext === hasEnd) problems.push(`${where}: needs exactly one of Next or End`);
      }

      if (state.Type === 'Task') {
        if (!state.Retry?.length && !noRetry.has(name)) problems.push(`${where}: Task has no Retry`);
        if (!state.Catch?.length && !noCatch.has(name)) problems.push(`${where}: Task has no Catch`);
      }

      childMachines(state).forEach((child, i) => {
        const label = state.Type === 'Parallel' ? `${name}[branch ${i}]` : name;
        checkMachine(child, `${scope}${label}/`);
      });
    }

    // Reachability from StartAt within this scope.
    const reached = new Set<string>();
    const queue = m.StartAt in m.States ? [m.StartAt] : [];
    while (queue.length > 0) {
      const n = queue.pop() as string;
      if (reached.has(n)) continue;
      reached.add(n);
      for (const t of successors(m.States[n])) if (t in m.States && !reached.has(t)) queue.push(t);
    }
    for (const n of names) if (!reached.has(n)) problems.push(`${scope}${n}: unreachable from StartAt`);
  };

  checkMachine(definition, '');
  return problems;
}

/** checkGraph for builders: throws naming every problem, so a broken definition never deploys. */
export function assertGraph(definition: StateMachineDefinition, who: string, opts: GraphOptions = {}): void {
  const problems = checkGraph(definition, opts);
  if (problems.length > 0) throw new Error(`${who}: the state graph is broken: ${problems.join('; ')}`);
}
