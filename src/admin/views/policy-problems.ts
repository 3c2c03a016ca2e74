/**
 * Which field of the policy editor each problem the policy check names
 * belongs to, and the problem in the editor's words: the check speaks of
 * settings by their API names (`tap.minMinutes`); the editor, by its labels.
 */

/** A policy setting's field in the editor: its element id and the words its label uses. */
interface PolicyField {
  path: string;
  id: string;
  words: string;
}

// allowedMethods before mfaRequired: "with mfaRequired, allowedMethods needs..." is about the methods.
const FIELDS: PolicyField[] = [
  { path: 'allowedMethods', id: 'methods', words: 'Methods users may use' },
  { path: 'mfaRequired', id: 'mfa-required', words: 'Require a second factor' },
  { path: 'tap.minMinutes', id: 'tap-min', words: 'Shortest lifetime' },
  { path: 'tap.maxMinutes', id: 'tap-max', words: 'Longest lifetime' },
  { path: 'tap.defaultMinutes', id: 'tap-default', words: 'Offered lifetime' },
  { path: 'lockout.accountFailures', id: 'lock-failures', words: 'Failures in a row' },
  { path: 'lockout.blockMinutes', id: 'lock-minutes', words: 'How long it is held back' },
  { path: 'rememberedDeviceDays', id: 'remember', words: 'Days a browser may skip the second factor' },
  { path: 'retention.signinEventDays', id: 'keep-signins', words: 'Sign-in log (days)' },
  { path: 'retention.auditDays', id: 'keep-audit', words: 'Audit log (days)' },
  { path: 'failMode', id: 'fail-closed', words: 'When none of a user’s methods can be used' },
];

/** A problem placed at its field (`field` undefined for one that names none), in the editor's words. */
export interface PlacedProblem {
  field: string | undefined;
  text: string;
}

const mentions = (text: string, path: string) => new RegExp(`(^|[^A-Za-z.])${path.replace(/\./g, '\\.')}([^A-Za-z]|$)`).test(text);

export function placeProblem(problem: string): PlacedProblem {
  const field = FIELDS.find((f) => problem.startsWith(`${f.path} `) || problem.startsWith(`${f.path}:`)) ?? FIELDS.find((f) => mentions(problem, f.path));
  // Longest paths first, so "tap.minMinutes" is never read as "tap" and the rest.
  let text = problem;
  for (const f of [...FIELDS].sort((a, b) => b.path.length - a.path.length)) {
    text = text.replace(new RegExp(`(^|[^A-Za-z.])${f.path.replace(/\./g, '\\.')}(?![A-Za-z])`, 'g'), `$1“${f.words}”`);
  }
  return { field: field?.id, text: `${text[0]!.toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}` };
}
