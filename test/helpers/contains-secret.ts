/**
 * Whether `text` holds `secret`. A numeric code counts only as a number of its
 * own: "654000" inside the epoch-millisecond time of a log line is a
 * coincidence, not a leak (with thousands of log lines it happens).
 */
export function containsSecret(text: string, secret: string): boolean {
  if (!/^[0-9]+$/.test(secret)) return text.includes(secret);
  return new RegExp(`(?<![0-9])${secret}(?![0-9])`).test(text);
}
