import { html, type SafeHtml } from '../http/page/html.ts';
import type { ClusterMonitor } from '../cluster/cluster-monitor.ts';

/**
 * The admin console's banner when the cluster would not survive losing its
 * largest node at the observed peak (as of the latest heartbeat, so a page
 * never waits on a store for it).
 */
export function clusterWarning(cluster: ClusterMonitor): SafeHtml | '' {
  const view = cluster.latest;
  if (!view || view.survivesNodeLoss || !cluster.clustered) return '';
  return html`<p class="alert error" role="alert" data-alert="cluster-headroom">This cluster would not survive losing a node at its observed peak: losing the largest node leaves ${view.capacityAfterLossPerSecond} password sign-ins per second for a peak of ${view.peakLoadPerSecond}. Add a node or capacity before changing anything. Details on the <a href="/status">status page</a>.</p>`;
}
