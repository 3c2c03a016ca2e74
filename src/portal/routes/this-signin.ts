import type { SigninEvent } from '../../activity/signin-event.ts';
import type { Session } from '../../sessions/sessions.ts';
import { FLOW_LIFETIME_MS } from '../../signin/flow.ts';

/**
 * The events of the sign-in that made this session, to mark "this is you"
 * (with no report button: reporting one's own sign-in would only sign the
 * user out everywhere else and flag their account). Events do not name their
 * session, so it is the newest successful one from this browser (address and
 * user agent) up to the moment the session proved its user, and the password
 * step that led to it; a sign-in from elsewhere is never among them.
 */
export function thisSignin(events: SigninEvent[], session: Pick<Session, 'authTime'>, here: { ip: string; userAgent: string | null }): Set<string> {
  const fromHere = (e: SigninEvent) => e.outcome === 'success' && e.ip === here.ip && e.userAgent === here.userAgent;
  // Newest first; recorded beside the session, so a moment after its authTime at most.
  const last = events.find((e) => fromHere(e) && e.at <= session.authTime + 5_000 && e.at >= session.authTime - 2 * FLOW_LIFETIME_MS);
  if (!last) return new Set();
  const ids = new Set([last.id]);
  if (last.step === 'second-factor') {
    const first = events.find(
      (e) => fromHere(e) && e.step === 'password' && e.reason === 'factor_required' && e.at <= last.at && e.at >= last.at - FLOW_LIFETIME_MS,
    );
    if (first) ids.add(first.id);
  }
  return ids;
}
