import type { MethodChoice } from './method-choices.ts';
import type { ChallengeResult } from '../methods/method.ts';

export interface IssuedSession {
  token: string;
  expiresAt: string;
  /** Whose session it is (for the pages' known-browser mark; not part of the API answer). */
  userId: string;
}

/** A token for the browser to keep, when it asked to be remembered. */
export interface RememberedBrowser {
  token: string;
  expiresAt: number;
}

/**
 * What a sign-in does next, the one answer of the sign-in state machine
 * (`SigninService`). The JSON API, the pages and the app API each render it
 * their way; none of them decides it.
 *
 * - `factor`: a second factor is due in `flow`; `methods` are the user's
 *   choices in the order to offer them (unavailable ones last).
 * - `register`: the user has no way to sign in of their own yet; `session` may
 *   only add a first method (sessions/session-scope.ts).
 * - `done`: signed in.
 * - `no-way-in`: none of the user's methods can be used now (every channel
 *   they use is down) and the tenant fails closed: ask again later, or for a
 *   Temporary Access Pass.
 */
export type NextStep =
  | { kind: 'factor'; flow: string; methods: MethodChoice[] }
  | { kind: 'register'; methods: MethodChoice[]; session: IssuedSession }
  | { kind: 'done'; methods: MethodChoice[]; session: IssuedSession; remembered?: RememberedBrowser }
  | { kind: 'no-way-in'; methods: MethodChoice[]; retryAfter: number; why?: string };

/** A second factor made ready to answer: its challenge started (a code sent, WebAuthn options built). */
export interface FactorPrompt {
  flow: string;
  methods: MethodChoice[];
  chosen: MethodChoice;
  /** What the method's challenge produced: where a code went, WebAuthn options. */
  challenge: ChallengeResult;
  /** Why this is not what was asked for, or why no new code went out. */
  notice?: { kind: 'error' | 'info'; text: string };
}

/** The answer the JSON sign-in API gives for a step (its public contract). */
export function apiState(step: Exclude<NextStep, { kind: 'no-way-in' }>) {
  switch (step.kind) {
    case 'factor':
      return { state: 'factor_required' as const, flow: step.flow, methods: step.methods };
    case 'register':
      return { state: 'registration_required' as const, flow: null, methods: step.methods, session: step.session };
    case 'done':
      return { state: 'complete' as const, flow: null, methods: step.methods, session: step.session };
  }
}
