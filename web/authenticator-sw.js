/* global self, caches, Response, importScripts, SteadfastRenewal */
// The Steadfast Authenticator's service worker: shows sign-in requests that
// arrive by Web Push while the app is closed, opens the app when one is
// tapped, and keeps the app's shell so it opens without a network.
// It answers no request itself: the page does, with the user. When the push
// service replaces the subscription while the app is closed, it sends the new
// one to the server signed by the device key (read from IndexedDB, never out).
'use strict';

importScripts('/assets/authenticator-renewal.js');

var SHELL = 'steadfast-authenticator-v3';
var scope = new URL(self.registration.scope).pathname.replace(/\/$/, '');
// The scope is /t/{tenant}/authenticator: the tenant the device record is kept under.
var tenant = scope.split('/')[2];
var api = '/api/v1/t/' + tenant + '/authenticator';
var SHELL_FILES = [
  scope,
  scope + '/manifest.webmanifest',
  '/assets/steadfast.css',
  '/assets/authenticator.js',
  '/assets/authenticator-renewal.js',
  '/assets/authenticator-totp.js',
  '/assets/authenticator-icon.svg',
];

self.addEventListener('install', function (event) {
  event.waitUntil(
    caches
      .open(SHELL)
      .then(function (cache) {
        return cache.addAll(SHELL_FILES);
      })
      .catch(function () {})
      .then(function () {
        return self.skipWaiting();
      }),
  );
});

self.addEventListener('activate', function (event) {
  event.waitUntil(self.clients.claim());
});

// The shell: network first (a new version wins), the cache when offline. The API is never cached.
self.addEventListener('fetch', function (event) {
  var url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.indexOf('/api/') === 0) return;
  var path = url.pathname.replace(/\/$/, '');
  if (SHELL_FILES.indexOf(path) < 0) return;
  event.respondWith(
    fetch(event.request)
      .then(function (response) {
        if (response.ok) {
          var copy = response.clone();
          caches.open(SHELL).then(function (cache) {
            cache.put(path, copy);
          });
        }
        return response;
      })
      .catch(function () {
        return caches.match(path).then(function (hit) {
          return hit || Response.error();
        });
      }),
  );
});

self.addEventListener('push', function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  var where = [data.app, data.ip ? 'from ' + data.ip : ''].filter(Boolean).join(' ');
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (windows) {
      // Tell an open app at once; it shows the request itself.
      windows.forEach(function (w) {
        w.postMessage({ kind: 'signin-request' });
      });
      return self.registration.showNotification('Sign-in request', {
        body: 'Someone is signing in' + (where ? ' to ' + where : '') + '. Open to approve or deny.',
        tag: 'steadfast-signin',
        renotify: true,
        requireInteraction: true,
        icon: '/assets/authenticator-icon.svg',
        data: { url: scope },
      });
    }),
  );
});

self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if (windows[i].url.indexOf(scope) >= 0 && 'focus' in windows[i]) return windows[i].focus();
      }
      return self.clients.openWindow(scope);
    }),
  );
});

/**
 * The subscription to use after a change: the push service's new one, or a new
 * one made with the same VAPID key (the old subscription's, else the server's).
 */
function renewedSubscription(oldSubscription, newSubscription) {
  if (newSubscription) return Promise.resolve(newSubscription);
  var known = oldSubscription && oldSubscription.options && oldSubscription.options.applicationServerKey;
  var key = known
    ? Promise.resolve(known)
    : fetch(api + '/config', { credentials: 'omit', cache: 'no-store' })
        .then(function (res) {
          return res.json();
        })
        .then(function (config) {
          return SteadfastRenewal.fromBase64url(config.vapidPublicKey);
        });
  return key.then(function (applicationServerKey) {
    return self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey });
  });
}

/** What `pushsubscriptionchange` does: subscribe again if needed, and tell the server, signed by the device key. */
function renewSubscription(oldSubscription, newSubscription) {
  return renewedSubscription(oldSubscription, newSubscription).then(function (subscription) {
    return SteadfastRenewal.sendIfChanged(api, tenant, subscription);
  });
}

self.addEventListener('pushsubscriptionchange', function (event) {
  event.waitUntil(
    renewSubscription(event.oldSubscription, event.newSubscription).catch(function () {
      // Nothing more a closed app can do: the page sends its subscription again when it is next opened.
    }),
  );
});
