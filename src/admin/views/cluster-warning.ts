import { html, type SafeHtml } from '../../http/page/html.ts';

/** What the cluster would be left with on losing its largest node, when that is less than its observed peak. */
export interface HeadroomShortfall {
  capacityAfterLossPerSecond: number;
  peakLoadPerSecond: number;
}

/** The admin console's banner when the cluster would not survive losing its largest node at the observed peak. */
export function clusterWarning(shortfall: HeadroomShortfall | undefined): SafeHtml | '' {
  if (!shortfall) return '';
  return html`<p class="alert error" role="alert" data-alert="cluster-headroom">This cluster would not survive losing a node at its observed peak: losing the largest node leaves ${shortfall.capacityAfterLossPerSecond} password sign-ins per second for a peak of ${shortfall.peakLoadPerSecond}. Add a node or capacity before changing anything. Details on the <a href="/status">status page</a>.</p>`;
}
