import type { State } from './asl';
import { successors } from './graph';
import type { IamStatement } from '../contracts/iam';
import { splitStates, type StatesInput } from './tasks';

/**
 * A piece of a workflow, in the style of aws-cdk's StateMachineFragment: its states, the IAM
 * statements its tasks need, the states other pieces may enter it by, and the states of other
 * pieces it leaves to. ASL transitions are by name, so entries and exits are state names; a
 * fragment that declares them can be checked on its own (`checkFragment`) and composed with others
 * (`composeFragments`), which checks that every exit lands on another fragment's entry.
 */
export interface Fragment {
  /** Names the fragment in error messages, e.g. `downstream/lock`. */
  readonly name: string;
  /** States other fragments may transition to; the first is where the fragment starts. */
  readonly entries: readonly string[];
  /** States of other fragments it transitions to (by Next, Default, Choices or Catch). */
  readonly exits: readonly string[];
  /** Whether one of its states ends the (sub)machine with `End: true`. */
  readonly ends: boolean;
  /** Its states, in definition order. */
  readonly states: Readonly<Record<string, State>>;
  /** The IAM statements its tasks need, in state order. */
  readonly statements: readonly IamStatement[];
}

export interface FragmentSpec {
  /** Names the fragment in error messages. */
  name: string;
  /** States other fragments may enter; the first is where the fragment starts. */
  entries: string[];
  /** States outside the fragment it transitions to. @default [] */
  exits?: string[];
  /** Whether one of its states ends the (sub)machine with `End: true`. @default false */
  ends?: boolean;
  /** Plain states or task helper results (whose statements the fragment collects). */
  states: StatesInput;
}

/**
 * Problems of a fragment on its own (empty = OK): entries that are not its states, transitions to
 * undeclared exits, declared exits it never takes (or that are its own states), an `End` it does
 * not declare (or a declared one it lacks), and states no entry reaches.
 */
export function checkFragment(f: Fragment): string[] {
  const problems: string[] = [];
  const where = `fragment ${f.name}`;
  const own = (name: string) => Object.prototype.hasOwnProperty.call(f.states, name);
  if (f.entries.length === 0) problems.push(`${where}: no entries`);
  for (const e of f.entries) if (!own(e)) problems.push(`${where}: entry "${e}" is not one of its states`);
  const declared = new Set(f.exits);
  const taken = new Set<string>();
  let ends = false;
  for (const [name, state] of Object.entries(f.states)) {
    if ('End' in state && state.End === true) ends = true;
    for (const target of successors(state)) {
      if (own(target)) continue;
      taken.add(target);
      if (!declared.has(target)) problems.push(`${where}: ${name} goes to "${target}", not a declared exit`);
    }
  }
  for (const x of f.exits) {
    if (own(x)) problems.push(`${where}: exit "${x}" is one of its own states`);
    else if (!taken.has(x)) problems.push(`${where}: declared exit "${x}" is never taken`);
  }
  if (ends && !f.ends) problems.push(`${where}: a state has End but the fragment does not declare ends`);
  if (!ends && f.ends) problems.push(`${where}: declares ends but no state has End`);

  const reached = new Set<string>();
  const queue = f.entries.filter(own);
  while (queue.length > 0) {
    const name = queue.pop() as string;
    if (reached.has(name)) continue;
    reached.add(name);
    for (const t of successors(f.states[name])) if (own(t) && !reached.has(t)) queue.push(t);
  }
  for (const name of Object.keys(f.states))
    if (!reached.has(name)) problems.push(`${where}: ${name} is unreachable from its entries`);
  return problems;
}

/** Builds a fragment and checks it (`checkFragment`), throwing every problem at once. */
export function fragment(spec: FragmentSpec): Fragment {
  const { states, statements } = splitStates(spec.states);
  const built: Fragment = {
    name: spec.name,
    entries: spec.entries,
    exits: spec.exits ?? [],
    ends: spec.ends ?? false,
    states,
    statements,
  };
  const problems = checkFragment(built);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return built;
}

/** A (sub)machine's parts: start, states in fragment order, and the statements of them all. */
export interface Composed {
  startAt: string;
  states: Record<string, State>;
  statements: IamStatement[];
}

/**
 * Joins fragments in order (their states in that order: definition order is part of the output)
 * and starts at the first fragment's first entry. Throws when two fragments share a state name or
 * when an exit is not an entry of another fragment.
 */
export function composeFragments(fragments: readonly Fragment[]): Composed {
  if (fragments.length === 0) throw new Error('composeFragments: no fragments');
  const problems: string[] = [];
  const owner = new Map<string, string>();
  const entryOf = new Map<string, string>();
  const states: Record<string, State> = {};
  const statements: IamStatement[] = [];
  for (const f of fragments) {
    for (const [name, state] of Object.entries(f.states)) {
      const prior = owner.get(name);
      if (prior !== undefined) problems.push(`state ${name} is in fragments ${prior} and ${f.name}`);
      owner.set(name, f.name);
      states[name] = state;
    }
    for (const e of f.entries) entryOf.set(e, f.name);
    statements.push(...f.statements);
  }
  for (const f of fragments) {
    for (const x of f.exits) {
      const target = entryOf.get(x);
      if (target === undefined || target === f.name)
        problems.push(`fragment ${f.name} exits to "${x}", which is no other fragment's entry`);
    }
  }
  if (problems.length > 0) throw new Error(`composeFragments: ${problems.join('; ')}`);
  return { startAt: fragments[0].entries[0], states, statements };
}
