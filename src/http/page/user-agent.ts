import Bowser from 'bowser';

/** "Chrome 156 on Linux" from a user-agent string, for people reading their sign-in history. */
export function describeUserAgent(userAgent: string | null): string {
  if (!userAgent) return 'Unknown device';
  const parsed = Bowser.parse(userAgent);
  const browser = [parsed.browser.name, parsed.browser.version?.split('.')[0]].filter(Boolean).join(' ');
  const os = [parsed.os.name, parsed.os.versionName ?? ''].filter(Boolean).join(' ').trim();
  if (!browser && !os) return userAgent.slice(0, 60);
  return os ? `${browser || 'Unknown browser'} on ${os}` : browser;
}
