import { dictionary } from '@zxcvbn-ts/language-common';

let common: Set<string> | undefined;

/**
 * Whether a password is one of the ~50,000 most common (the list zxcvbn-ts
 * ships, from real breaches), compared without case: NIST 800-63B 3.1.1.2 asks
 * for new passwords to be checked against commonly used and compromised
 * values, not for composition rules. Loaded on first use.
 */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
  return common.has(password.normalize('NFKC').toLowerCase());
}
