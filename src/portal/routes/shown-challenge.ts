/** What a second step's page shows of a challenge started in the post before it, kept for the page across refreshes. */
import type { ChallengeResult } from '../../methods/method.ts';
import type { SentCode } from '../../methods/out-of-band/sent-code.ts';

/**
 * Where a code went and the number a device request asks for, as flash
 * values. WebAuthn options are left out: the page makes its own. Nothing here
 * is a secret the user types (a sent code is never in it).
 */
export function shownChallenge(challenge: ChallengeResult): Record<string, string> {
  const shown: Record<string, string> = {};
  if (challenge.delivery) {
    const d = challenge.delivery;
    Object.assign(shown, { channel: d.channel, to: d.to, expiresAt: d.expiresAt, resendAfterSeconds: String(d.resendAfterSeconds) });
  }
  if (challenge.push) Object.assign(shown, { pushNumber: challenge.push.number, pushExpiresAt: challenge.push.expiresAt });
  return shown;
}

/** The challenge parts `shownChallenge` kept, back in their shape; nothing for a flash that kept none. */
export function restoredChallenge(shown: Record<string, string> | undefined): ChallengeResult {
  if (!shown) return {};
  const restored: ChallengeResult = {};
  if (shown.channel && shown.to) {
    restored.delivery = {
      channel: shown.channel as SentCode['channel'],
      to: shown.to,
      expiresAt: shown.expiresAt ?? '',
      resendAfterSeconds: Number(shown.resendAfterSeconds ?? 0),
    };
  }
  if (shown.pushNumber && shown.pushExpiresAt) restored.push = { number: shown.pushNumber, expiresAt: shown.pushExpiresAt };
  return restored;
}
