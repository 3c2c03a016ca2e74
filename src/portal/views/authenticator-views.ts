import { html } from '../../http/page/html.ts';

export interface AuthenticatorTenant {
  slug: string;
  name: string;
}

/**
 * The Steadfast Authenticator's page: a shell the app script fills in. It
 * holds nothing of the user's (the app keeps its key in the browser's own
 * storage), so any node serves it, and it works offline from the service worker's cache.
 */
export function authenticatorView(v: { tenant: AuthenticatorTenant }): string {
  const { tenant } = v;
  const root = `/t/${tenant.slug}/authenticator`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="theme-color" content="#0b57d0">
<title>Steadfast Authenticator · ${tenant.name}</title>
<link rel="manifest" href="${root}/manifest.webmanifest">
<link rel="icon" href="/assets/authenticator-icon.svg" type="image/svg+xml">
<link rel="apple-touch-icon" href="/assets/authenticator-icon.svg">
<link rel="stylesheet" href="/assets/steadfast.css">
<script src="/assets/authenticator-renewal.js" defer></script>
<script src="/assets/authenticator-totp.js" defer></script>
<script src="/assets/authenticator.js" defer></script>
</head>
<body data-tenant="${tenant.slug}" data-tenant-name="${tenant.name}" data-api="/api/v1/t/${tenant.slug}/authenticator" data-worker="${root}/sw.js" data-scope="${root}">
<header class="top"><span class="brand">Steadfast Authenticator</span><span class="who">${tenant.name}</span></header>
<main id="main">
<noscript><div class="card"><p class="alert error">The Steadfast Authenticator needs JavaScript: it keeps its key in your browser.</p></div></noscript>
<div class="card" data-view="loading"><p role="status">Starting…</p></div>

<div class="card" data-view="unsupported" hidden>
<h1>This browser can't run the authenticator</h1>
<p>It needs a browser with Web Crypto and IndexedDB, over HTTPS. Open the link in your phone's main browser.</p>
</div>

<div class="card" data-view="unpaired" hidden>
<h1>Not paired yet</h1>
<p>To pair this phone, go to <strong>Security info</strong> on your computer, choose <strong>Add the Steadfast Authenticator</strong>, and scan the QR code with this phone.</p>
</div>

<form class="card" data-view="pair" hidden>
<h1>Pair this device</h1>
<p>This phone will get sign-in requests for your ${tenant.name} account. It makes a key that never leaves it.</p>
<label for="device-name">Name for this device</label>
<input type="text" id="device-name" name="name" maxlength="100" autocomplete="off" placeholder="My phone">
<button type="submit">Pair this device</button>
<p class="alert error" role="alert" data-error hidden></p>
</form>

<div data-view="paired" hidden>
<div class="card">
<h1>Sign-in requests</h1>
<p class="hint">Paired as <strong data-account></strong>. <span data-delivery></span></p>
<div data-requests aria-live="polite"><p data-empty>No sign-in requests waiting.</p></div>
<p role="status" class="alert" data-result hidden></p>
</div>
</div>

<form class="card" data-add-account hidden>
<h2>Add this account?</h2>
<p>The app will show codes for <strong data-add-name></strong>. Its key stays in this browser, encrypted.</p>
<div class="actions">
<button type="submit">Add account</button>
<button type="button" class="secondary" data-add-cancel>Cancel</button>
</div>
</form>

<section class="card" data-codes aria-labelledby="codes-heading" hidden>
<h2 id="codes-heading">Codes</h2>
<p data-no-codes>No accounts yet. Add one from an authenticator set-up page, or paste its otpauth:// link below.</p>
<ul class="methods" data-code-list></ul>
<p role="status" class="alert" data-code-result hidden></p>
<form data-paste-form novalidate>
<label for="otpauth-uri">Add an account: paste its otpauth:// link</label>
<input type="text" id="otpauth-uri" name="uri" autocomplete="off" spellcheck="false" maxlength="2048">
<button type="submit" class="secondary">Add account</button>
</form>
</section>

<template id="request-template">
<form class="request" novalidate>
<h2>Are you signing in?</h2>
<dl class="request-facts">
<dt>Account</dt><dd data-field="username"></dd>
<dt>App</dt><dd data-field="app"></dd>
<dt>From</dt><dd data-field="ip"></dd>
<dt>Browser</dt><dd data-field="browser"></dd>
</dl>
<label for="push-number">Enter the number shown on the sign-in screen</label>
<input type="text" id="push-number" name="number" class="code" inputmode="numeric" pattern="[0-9]*" maxlength="2" autocomplete="off" required>
<p class="hint" data-expires></p>
<div class="actions">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="button" class="secondary" data-deny>Deny</button>
</div>
<p><button type="button" class="link" data-not-me>This wasn't me: deny and report it</button></p>
</form>
</template>
</main>
<footer><small>Protected by Steadfast</small></footer>
</body>
</html>`.value;
}

/** The web app manifest: installable, starts at the app, stays in its own window. */
export function authenticatorManifest(v: { tenant: AuthenticatorTenant }) {
  const root = `/t/${v.tenant.slug}/authenticator`;
  return {
    name: `Steadfast Authenticator · ${v.tenant.name}`,
    short_name: 'Authenticator',
    description: 'Approve sign-ins with a key that stays on this device.',
    id: root,
    start_url: root,
    scope: root,
    display: 'standalone',
    background_color: '#f6f6f9',
    theme_color: '#0b57d0',
    icons: [{ src: '/assets/authenticator-icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
  };
}
