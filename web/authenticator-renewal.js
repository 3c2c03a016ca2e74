/* global self, indexedDB, crypto, TextEncoder, btoa, atob */
// Keeping the server's copy of this device's Web Push subscription current.
// Shared by the Steadfast Authenticator's page (on every open) and its service
// worker (on `pushsubscriptionchange`, while the app is closed): both read the
// device's record from IndexedDB, and only the device's key, which never
// leaves the browser, can sign a change the server takes.
(function (global) {
  'use strict';

  var DATABASE = 'steadfast-authenticator';
  var STORE = 'devices';

  function database() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open(DATABASE, 1);
      open.onupgradeneeded = function () {
        open.result.createObjectStore(STORE);
      };
      open.onsuccess = function () {
        resolve(open.result);
      };
      open.onerror = function () {
        reject(open.error);
      };
    });
  }
  function request(mode, run) {
    return database().then(function (db) {
      return new Promise(function (resolve, reject) {
        var req = run(db.transaction(STORE, mode).objectStore(STORE));
        req.onsuccess = function () {
          resolve(req.result);
        };
        req.onerror = function () {
          reject(req.error);
        };
      });
    });
  }

  function base64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = '';
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function fromBase64url(text) {
    var raw = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  /** A subscription as JSON (`PushSubscription` or its `toJSON()`), or null. */
  function plain(subscription) {
    if (!subscription) return null;
    var json = typeof subscription.toJSON === 'function' ? subscription.toJSON() : subscription;
    return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
  }
  /** What the device record keeps to know whether the server has this subscription already. */
  function fingerprint(subscription) {
    var sub = plain(subscription);
    return sub ? [sub.endpoint, sub.keys.p256dh, sub.keys.auth].join(' ') : '';
  }
  /** The statement the server checks (subscriptionMessage in src/methods/push/device-signature.ts). */
  function statement(deviceId, sub, time) {
    return ['steadfast-push-v1', 'subscribe', deviceId, sub ? sub.endpoint : '', sub ? sub.keys.p256dh : '', sub ? sub.keys.auth : '', String(time)].join('\n');
  }

  /**
   * Sends `subscription` (null: none) to the server, signed by the device key,
   * when it is not the one the server last took from this device. Answers
   * 'sent', 'unchanged' or 'unpaired'; a refusal rejects.
   */
  function sendIfChanged(api, tenant, subscription) {
    var sub = plain(subscription);
    return request('readonly', function (s) {
      return s.get(tenant);
    }).then(function (record) {
      if (!record || !record.key) return 'unpaired';
      if (fingerprint(sub) === (record.subscription || '')) return 'unchanged';
      var time = Date.now();
      return crypto.subtle
        .sign({ name: 'ECDSA', hash: 'SHA-256' }, record.key, new TextEncoder().encode(statement(record.deviceId, sub, time)))
        .then(function (signature) {
          return fetch(api + '/subscription', {
            method: 'PUT',
            credentials: 'omit',
            cache: 'no-store',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ device: record.deviceId, subscription: sub, time: time, signature: base64url(signature) }),
          });
        })
        .then(function (res) {
          if (!res.ok) throw new Error('The server refused the new subscription (' + res.status + ').');
          // Read again: the page or the worker may have changed the record meanwhile.
          return request('readonly', function (s) {
            return s.get(tenant);
          });
        })
        .then(function (latest) {
          var next = latest || record;
          next.subscription = fingerprint(sub);
          next.webPush = !!sub;
          return request('readwrite', function (s) {
            return s.put(next, tenant);
          });
        })
        .then(function () {
          return 'sent';
        });
    });
  }

  global.SteadfastRenewal = {
    sendIfChanged: sendIfChanged,
    fingerprint: fingerprint,
    statement: statement,
    base64url: base64url,
    fromBase64url: fromBase64url,
  };
})(self);
