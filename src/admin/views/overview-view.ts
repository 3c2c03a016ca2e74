import { html } from '../../http/page/html.ts';
import type { DayOfSignins } from '../../activity/signin-activity.ts';
import { recordedMethodName } from '../../activity/recorded-method.ts';
import { signinReasonWords } from '../../activity/signin-reasons.ts';
import type { RegistrationCoverage } from '../../methods/registration-coverage.ts';
import { methodName } from '../../methods/registry.ts';
import type { ProviderHour } from '../../delivery/delivery-health-log.ts';
import { hourlyChart } from './charts/hourly-chart.ts';
import { barListChart } from './charts/bar-list-chart.ts';
import { shareBar } from './charts/share-bar.ts';
import { healthStrips } from './charts/health-strips.ts';
import { plural } from './charts/chart-figure.ts';
import { consoleBase, consolePage, type ConsoleViewer } from './console-layout.ts';

/** A delivery provider as the overview shows it: its channel, its breaker now, and its last day. */
export interface ProviderOverview {
  channel: string;
  provider: string;
  state: 'closed' | 'open' | 'half-open';
  hours: ProviderHour[];
}

const STATE_NOW = { closed: 'taking messages', 'half-open': 'being tried again', open: 'not used now (failing)' } as const;

/**
 * The console's overview: the tenant's last day of sign-ins (per hour,
 * failures by reason, methods used), where its users stand on registration,
 * and how the delivery providers did. Every chart is SVG drawn here, with a
 * description and a table of its numbers; each says so plainly when it has
 * nothing to show.
 */
export function overviewView(v: ConsoleViewer & { day: DayOfSignins; coverage: RegistrationCoverage; providers: ProviderOverview[] }): string {
  const { day, coverage } = v;
  const base = consoleBase(v);
  const succeeded = day.hours.reduce((s, h) => s + h.succeeded, 0);
  const failed = day.hours.reduce((s, h) => s + h.failed, 0);
  const channel = (c: string) => methodName(c);
  return consolePage(
    v,
    'overview',
    'Overview',
    html`<h1>Overview</h1>
<p class="hint">The last 24 hours, hour by hour in UTC, up to now.</p>
<section aria-labelledby="h-signins">
<h2 id="h-signins">Sign-ins</h2>
${
  succeeded + failed === 0
    ? html`<p class="empty">No sign-ins in the last 24 hours. Once people sign in, this shows each hour's successful sign-ins and failed attempts.</p>`
    : html`<p>${plural(succeeded, 'sign-in', 'sign-ins')} and ${plural(failed, 'failed attempt', 'failed attempts')}. <a href="${base}/signins">Every sign-in, in the log</a></p>
${hourlyChart({ id: 'chart-hours', title: 'Sign-ins per hour', good: 'Signed in', bad: 'Failed', hours: day.hours.map((h) => ({ start: h.start, good: h.succeeded, bad: h.failed })) })}`
}
</section>
<div class="chart-pair">
<section aria-labelledby="h-failures">
<h2 id="h-failures">Why sign-ins failed</h2>
${
  day.failures.length === 0
    ? html`<p class="empty">No failed sign-ins in the last 24 hours.</p>`
    : html`${barListChart({ id: 'chart-failures', title: 'Failed sign-ins by reason', what: 'failed attempts', cls: 'bad', items: day.failures.map((f) => ({ label: capital(signinReasonWords(f.reason)), count: f.count })) })}
<p><a href="${base}/signins?outcome=failure">Failed sign-ins in the log</a></p>`
}
</section>
<section aria-labelledby="h-methods">
<h2 id="h-methods">How people signed in</h2>
${
  day.methods.length === 0
    ? html`<p class="empty">No completed sign-ins in the last 24 hours.</p>`
    : barListChart({
        id: 'chart-methods',
        title: 'Sign-ins by the method that completed them',
        what: 'sign-ins',
        cls: 'good',
        items: day.methods.map((m) => ({ label: recordedMethodName(m.method), count: m.count })),
      })
}
</section>
</div>
<section aria-labelledby="h-coverage">
<h2 id="h-coverage">Registration</h2>
${
  coverage.users === 0
    ? html`<p class="empty">No active users yet. <a href="${base}">Add a user</a>.</p>`
    : html`${shareBar({
        id: 'chart-coverage',
        title: 'Active users by their strongest sign-in method',
        whole: 'active users',
        total: coverage.users,
        parts: [
          { label: 'Phishing-resistant (passkey or security key)', count: coverage.phishingResistant, cls: 'cover-strong' },
          { label: 'Other methods (app, email)', count: coverage.otherMethods, cls: 'cover-other' },
          { label: 'Only phone-based (SMS, voice)', count: coverage.phoneOnly, cls: 'cover-phone' },
          { label: 'No method yet', count: coverage.noMethod, cls: 'cover-none' },
        ],
      })}
${coverage.noMethod > 0 ? html`<p>${plural(coverage.noMethod, 'user has', 'users have')} no sign-in method yet: they register one at their next sign-in, or need a Temporary Access Pass if they have no password.</p>` : ''}
${coverage.phoneOnly > 0 ? html`<p>${plural(coverage.phoneOnly, 'user relies', 'users rely')} on a phone alone: when text messages and calls fail, a Temporary Access Pass is their only way in.</p>` : ''}`
}
</section>
<section aria-labelledby="h-delivery">
<h2 id="h-delivery">Code delivery</h2>
${
  v.providers.length === 0
    ? html`<p class="empty">No delivery providers are configured, so codes by text message, call or email are not offered.</p>`
    : html`${
        v.providers.every((p) => p.hours.every((h) => h.delivered + h.failed === 0))
          ? html`<p class="empty">No codes were sent in the last 24 hours.</p>`
          : healthStrips({
              id: 'chart-delivery',
              title: 'Delivery providers, hour by hour',
              rows: v.providers.map((p) => ({ label: `${channel(p.channel)}: ${p.provider}`, hours: p.hours })),
            })
      }
<ul class="plain">${v.providers.map((p) => html`<li>${channel(p.channel)}, ${p.provider}: ${STATE_NOW[p.state]}</li>`)}</ul>`
}
</section>`,
  );
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
