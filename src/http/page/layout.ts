/** The HTML page shell every page shares: language, title, the stylesheet, skip link and strict-CSP scripts. */
import { html, type SafeHtml } from './html.ts';

export interface LayoutOptions {
  title: string;
  tenantName: string;
  body: SafeHtml;
  /** Shown in the header when someone is signed in. */
  signedInAs?: string | undefined;
  signOut?: { action: string; csrf: string } | undefined;
  /** The signed-in person's own pages, before "Sign out" (so it is never the first thing the keyboard reaches). */
  links?: { href: string; text: string }[] | undefined;
  /** Load the page script (WebAuthn ceremonies, local times, copy buttons). */
  scripts?: boolean | undefined;
  /** Room for tables: the admin console. */
  wide?: boolean | undefined;
  /** Extra elements for the head (a refresh that moves on by itself). */
  head?: SafeHtml | undefined;
}

export function layout(options: LayoutOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${options.title} · ${options.tenantName}</title>
<link rel="stylesheet" href="/assets/steadfast.css">
${options.head ?? ''}
${options.scripts ? html`<script src="/assets/webauthn-browser.js" defer></script><script src="/assets/steadfast.js" defer></script>` : ''}
</head>
<body>
<a class="skip" href="#main">Skip to main content</a>
<header class="top">
  <span class="brand">${options.tenantName}</span>
  ${
    options.signedInAs
      ? html`<nav class="mine" aria-label="Your account"><span class="who">Signed in as <strong>${options.signedInAs}</strong></span>
  ${options.links ? options.links.map((l) => html`<a href="${l.href}">${l.text}</a>`) : ''}
  ${
    options.signOut
      ? html`<form method="post" action="${options.signOut.action}" class="inline"><input type="hidden" name="_csrf" value="${options.signOut.csrf}"><button type="submit" class="link">Sign out</button></form>`
      : ''
  }</nav>`
      : ''
  }
</header>
<main id="main" tabindex="-1"${options.wide ? html` class="wide"` : ''}>
${options.body}
</main>
<footer><small>Protected by Steadfast</small></footer>
</body>
</html>`.value;
}

export function alert(kind: 'error' | 'info', message: string | undefined): SafeHtml | string {
  if (!message) return '';
  return kind === 'error' ? html`<p class="alert error" role="alert">${message}</p>` : html`<p class="alert info" role="status">${message}</p>`;
}
