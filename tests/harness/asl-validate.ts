import validator from 'asl-validator';
import type { StateMachineDefinition } from '../../state-machines/asl';

/** asl-validator problems as `CODE: message` strings (empty = valid). Input is never mutated. */
export function validateAsl(definition: StateMachineDefinition): string[] {
  // asl-validator writes QueryLanguage into every state, so it gets a copy.
  const result = validator(structuredClone(definition), { checkArn: true, checkPaths: true });
  return result.isValid ? [] : result.errors.map((e) => `${e['Error code']}: ${e.Message}`);
}
