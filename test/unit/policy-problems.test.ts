import { describe, expect, it } from 'vitest';
import { placeProblem } from '../../src/admin/views/policy-problems.ts';

describe('policy problems placed at their fields', () => {
  it('places a problem at the setting it starts with, in the editor’s words', () => {
    expect(placeProblem('retention.auditDays must be a whole number from 30 to 3650')).toEqual({
      field: 'keep-audit',
      text: '“Audit log (days)” must be a whole number from 30 to 3650.',
    });
    expect(placeProblem('tap.minMinutes must not exceed tap.maxMinutes')).toEqual({
      field: 'tap-min',
      text: '“Shortest lifetime” must not exceed “Longest lifetime”.',
    });
  });

  it('places a problem about the methods that mentions MFA first at the methods', () => {
    expect(placeProblem('with mfaRequired, allowedMethods needs at least one method users can register for daily use').field).toBe('methods');
  });

  it('leaves a problem that names no field of the editor unplaced, still said', () => {
    expect(placeProblem('"webauthnAaguids" is not a policy setting')).toEqual({ field: undefined, text: '"webauthnAaguids" is not a policy setting.' });
  });
});
