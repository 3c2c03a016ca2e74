import type { Clock } from '../clock.ts';
import type { Incidents } from './incidents.ts';

export type ComponentState = 'up' | 'degraded' | 'down';

/** What users should do while a component is down, in words for the status page. */
const ADVICE: Record<string, string> = {
  durable: 'People who signed in here before keep signing in; new registrations and changes to sign-in methods wait until it is back.',
  ephemeral: 'Sign-ins may fail or need to be started again; try again in a few minutes.',
  sms: 'Use another sign-in method (authenticator app, passkey, another channel), or ask your administrator for a Temporary Access Pass.',
  voice: 'Use another sign-in method (authenticator app, passkey, another channel), or ask your administrator for a Temporary Access Pass.',
  email: 'Use another sign-in method (authenticator app, passkey, another channel), or ask your administrator for a Temporary Access Pass.',
};

export const COMPONENT_NAMES: Record<string, string> = {
  durable: 'Sign-in and accounts (database)',
  ephemeral: 'Sign-ins in progress (shared state)',
  sms: 'Text message codes',
  voice: 'Phone call codes',
  email: 'Email codes',
  config: 'Configuration changes',
};

/**
 * Opens an automatic incident when a component goes down and closes it when
 * it is back. A node remembers when it saw the component go down, so an
 * outage of the durable store itself (where incidents are kept) is recorded
 * with its real start once the store answers again.
 */
export class ComponentWatch {
  private readonly downSince = new Map<string, number>();
  private readonly recorded = new Set<string>();

  constructor(
    private readonly incidents: Incidents,
    private readonly clock: Clock,
  ) {}

  /** One look at every component's state; returns the components whose incident opened or closed. */
  async check(states: Record<string, ComponentState>): Promise<{ opened: string[]; closed: string[] }> {
    const opened: string[] = [];
    const closed: string[] = [];
    const now = this.clock.now();
    for (const [component, state] of Object.entries(states)) {
      if (state === 'down') {
        if (!this.downSince.has(component)) this.downSince.set(component, now);
        if (this.recorded.has(component)) continue;
        try {
          await this.incidents.openAuto({
            component,
            title: `${COMPONENT_NAMES[component] ?? component}: not working`,
            advice: ADVICE[component] ?? 'Try again in a few minutes.',
            startedAt: this.downSince.get(component)!,
          });
          this.recorded.add(component);
          opened.push(component);
        } catch {
          // The store that keeps incidents may be the one that is down: tried again on the next look.
        }
      } else if (this.downSince.has(component)) {
        try {
          if (!this.recorded.has(component)) {
            await this.incidents.openAuto({
              component,
              title: `${COMPONENT_NAMES[component] ?? component}: not working`,
              advice: ADVICE[component] ?? 'Try again in a few minutes.',
              startedAt: this.downSince.get(component)!,
            });
          }
          await this.incidents.closeAuto(component, 'Working again.', '', now);
          this.downSince.delete(component);
          this.recorded.delete(component);
          closed.push(component);
        } catch {
          // Tried again on the next look.
        }
      }
    }
    return { opened, closed };
  }
}
