import { methodName } from '../methods/registry.ts';

/**
 * What a sign-in record's `method` is called: a registered method by its
 * descriptor's name, and the two ways in that are not methods of their own,
 * the password and a passkey used without one.
 */
export function recordedMethodName(method: string | null): string {
  if (method === null) return 'Unknown';
  if (method === 'password') return 'Password';
  if (method === 'passkey') return 'Passkey, no password';
  return methodName(method);
}

/** What a sign-in record's `step` is: the first step (a password, a pass), the second, or a passkey on its own. */
export function recordedStepName(step: string): string {
  if (step === 'password') return 'First step';
  if (step === 'passkey') return 'Passkey';
  return 'Second step';
}
