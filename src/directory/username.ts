/**
 * Usernames compare case-insensitively and after Unicode normalisation, so
 * "Alice", "alice" and a visually identical composed form are one account.
 */
export function normaliseUsername(input: string): string {
  return input.normalize('NFKC').trim().toLowerCase();
}

// Printable characters only: no controls, no line breaks that could forge log lines.
const USERNAME_PATTERN = /^[^\p{Cc}\p{Cf}\s][^\p{Cc}\p{Cf}]{0,254}[^\p{Cc}\p{Cf}\s]$|^[^\p{Cc}\p{Cf}\s]$/u;

export function isValidUsername(normalised: string): boolean {
  return normalised.length >= 1 && normalised.length <= 256 && USERNAME_PATTERN.test(normalised);
}

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
