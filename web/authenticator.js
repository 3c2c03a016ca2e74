/* global indexedDB, crypto, TextEncoder, Notification, history, location, EventSource, SteadfastRenewal, SteadfastTotp */
// The Steadfast Authenticator. It pairs this browser with an account by a
// one-time link, keeps a P-256 key that cannot leave the browser (WebCrypto,
// non-extractable, stored in IndexedDB), and signs the person's answer to a
// sign-in request: the request, the flow it belongs to, the number they typed
// and the time. It also shows TOTP codes for accounts added to it, their keys
// encrypted under a non-extractable AES-GCM key. It runs under a CSP that forbids
// inline script: everything it needs comes from the page's data attributes.
(function () {
  'use strict';

  var body = document.body;
  var tenant = body.getAttribute('data-tenant');
  var api = body.getAttribute('data-api');
  var worker = body.getAttribute('data-worker');
  var scope = body.getAttribute('data-scope');
  var current = null; // the record of this browser's pairing
  var source = null; // the live stream
  var shownRequest = null;

  function view(name) {
    document.querySelectorAll('[data-view]').forEach(function (el) {
      el.hidden = el.getAttribute('data-view') !== name;
    });
  }

  if (!window.crypto || !window.crypto.subtle || !window.indexedDB || !window.isSecureContext) {
    view('unsupported');
    return;
  }

  // --- storage: one pairing per tenant in this browser ---------------------
  function database() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open('steadfast-authenticator', 1);
      open.onupgradeneeded = function () {
        open.result.createObjectStore('devices');
      };
      open.onsuccess = function () {
        resolve(open.result);
      };
      open.onerror = function () {
        reject(open.error);
      };
    });
  }
  function store(mode, run) {
    return database().then(function (db) {
      return new Promise(function (resolve, reject) {
        var request = run(db.transaction('devices', mode).objectStore('devices'));
        request.onsuccess = function () {
          resolve(request.result);
        };
        request.onerror = function () {
          reject(request.error);
        };
      });
    });
  }
  var load = function () {
    return store('readonly', function (s) {
      return s.get(tenant);
    });
  };
  var save = function (record) {
    return store('readwrite', function (s) {
      return s.put(record, tenant);
    });
  };

  // --- signing --------------------------------------------------------------
  // The encodings the service worker uses too (authenticator-renewal.js, loaded first).
  var base64url = SteadfastRenewal.base64url;
  var fromBase64url = SteadfastRenewal.fromBase64url;
  // WebCrypto's ECDSA signature is r || s (IEEE P1363), what the server checks.
  function sign(lines) {
    return crypto.subtle
      .sign({ name: 'ECDSA', hash: 'SHA-256' }, current.key, new TextEncoder().encode(['steadfast-push-v1'].concat(lines).join('\n')))
      .then(base64url);
  }

  function call(method, path, payload) {
    return fetch(api + path, {
      method: method,
      credentials: 'omit',
      cache: 'no-store',
      headers: payload ? { 'content-type': 'application/json' } : {},
      body: payload ? JSON.stringify(payload) : undefined,
    }).then(function (res) {
      if (res.status === 204) return {};
      return res.json().then(function (answer) {
        if (!res.ok) {
          var err = new Error(answer.detail || answer.title || 'The server refused the request.');
          err.status = res.status;
          throw err;
        }
        return answer;
      });
    });
  }

  // --- Web Push: only when the person allows notifications -------------------
  var registration = null;
  var registered = Promise.resolve(null);
  if ('serviceWorker' in navigator) {
    registered = navigator.serviceWorker
      .register(worker, { scope: scope })
      .then(function (reg) {
        registration = reg;
        return reg;
      })
      .catch(function () {
        return null;
      });
    navigator.serviceWorker.addEventListener('message', function (event) {
      if (event.data && event.data.kind === 'signin-request' && current) refresh();
    });
  }
  function within(ms, promise) {
    return Promise.race([
      promise,
      new Promise(function (resolve) {
        setTimeout(function () {
          resolve(null);
        }, ms);
      }),
    ]);
  }
  /** A push subscription, or null: no service worker, no permission, or no push service reachable. */
  function subscribeToPush() {
    if (!registration || !('PushManager' in window) || !('Notification' in window)) return Promise.resolve(null);
    return within(
      8000,
      Promise.all([Notification.requestPermission(), call('GET', '/config')])
        .then(function (got) {
          if (got[0] !== 'granted') return null;
          return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromBase64url(got[1].vapidPublicKey) }).then(function (sub) {
            return sub.toJSON();
          });
        })
        .catch(function () {
          return null;
        }),
    );
  }

  // --- pairing -----------------------------------------------------------------
  var pairForm = document.querySelector('[data-view="pair"]');
  pairForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var button = pairForm.querySelector('button');
    var error = pairForm.querySelector('[data-error]');
    button.disabled = true;
    error.hidden = true;
    var token = pairingToken();
    var keys;
    // The private key is made non-extractable: no script, not even this one, can read it out.
    crypto.subtle
      .generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
      .then(function (made) {
        keys = made;
        return Promise.all([crypto.subtle.exportKey('jwk', made.publicKey), subscribeToPush()]);
      })
      .then(function (got) {
        var jwk = got[0];
        return call('POST', '/pair', {
          token: token,
          publicKey: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
          name: document.getElementById('device-name').value.trim() || undefined,
          subscription: got[1] || undefined,
        }).then(function (paired) {
          return {
            deviceId: paired.deviceId,
            username: paired.username,
            tenantName: paired.tenant.name,
            key: keys.privateKey,
            webPush: !!got[1],
            // What the server holds, so a later open sends only a changed subscription.
            subscription: SteadfastRenewal.fingerprint(got[1]),
          };
        });
      })
      .then(function (record) {
        return save(record).then(function () {
          return record;
        });
      })
      .then(function (record) {
        // The link is used up; it should not stay in the address bar or the history.
        history.replaceState(null, '', location.pathname);
        start(record);
      })
      .catch(function (err) {
        error.textContent = err.message || 'Pairing failed. Try again.';
        error.hidden = false;
        button.disabled = false;
      });
  });

  function pairingToken() {
    var match = /^#pair=([A-Za-z0-9_-]{16,64})$/.exec(location.hash);
    return match ? match[1] : null;
  }

  // --- requests ---------------------------------------------------------------
  var requestsBox = document.querySelector('[data-requests]');
  var emptyNote = requestsBox.querySelector('[data-empty]');
  var resultBox = document.querySelector('[data-result]');

  function browserOf(ua) {
    if (!ua) return 'Unknown browser';
    var name = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'A browser';
    var os = /Windows/.test(ua)
      ? 'Windows'
      : /iPhone|iPad/.test(ua)
        ? 'iOS'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Android/.test(ua)
            ? 'Android'
            : /Linux/.test(ua)
              ? 'Linux'
              : '';
    return os ? name + ' on ' + os : name;
  }

  function result(kind, text) {
    resultBox.className = 'alert ' + kind;
    resultBox.textContent = text;
    resultBox.hidden = false;
  }

  function show(request) {
    if (shownRequest && request && shownRequest.id === request.id) return;
    var old = requestsBox.querySelector('form.request');
    if (old) old.remove();
    shownRequest = request;
    emptyNote.hidden = !!request;
    if (!request) return;
    resultBox.hidden = true;
    var form = document.getElementById('request-template').content.firstElementChild.cloneNode(true);
    form.querySelector('[data-field="username"]').textContent = request.username;
    form.querySelector('[data-field="app"]').textContent = request.app || 'Sign-in page';
    form.querySelector('[data-field="ip"]').textContent = request.ip || 'Unknown';
    form.querySelector('[data-field="browser"]').textContent = browserOf(request.userAgent);
    var expires = form.querySelector('[data-expires]');
    var timer = setInterval(function () {
      var left = Math.round((Date.parse(request.expiresAt) - Date.now()) / 1000);
      if (!form.isConnected) return clearInterval(timer);
      expires.textContent = left > 0 ? 'Expires in ' + left + ' seconds.' : 'This request has expired.';
    }, 1000);
    var number = form.querySelector('input[name="number"]');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (!/^[0-9]{2}$/.test(number.value.trim())) {
        result('error', 'Enter the two-digit number shown on the sign-in screen.');
        number.focus();
        return;
      }
      answer(request, 'approve', number.value.trim(), false);
    });
    form.querySelector('[data-deny]').addEventListener('click', function () {
      answer(request, 'deny', '', false);
    });
    form.querySelector('[data-not-me]').addEventListener('click', function () {
      answer(request, 'deny', '', true);
    });
    requestsBox.appendChild(form);
    number.focus();
  }

  var OUTCOMES = {
    approved: ['info', 'Approved. You can go back to the sign-in.'],
    denied: ['info', 'Denied. Nobody signs in with this request.'],
    'not-me': ['error', "Denied and reported. If you didn't try to sign in, someone may know your password: change it."],
    'wrong-number': ['error', "The number didn't match, so the request was denied. If it was you, start the sign-in again."],
  };

  function answer(request, decision, number, notMe) {
    var form = requestsBox.querySelector('form.request');
    if (form)
      form.querySelectorAll('button').forEach(function (b) {
        b.disabled = true;
      });
    var time = Date.now();
    sign([decision, request.id, request.binding, decision === 'approve' ? number : '', String(time)])
      .then(function (signature) {
        return call('POST', '/requests/' + encodeURIComponent(request.id), {
          device: current.deviceId,
          decision: decision,
          number: number,
          notMe: notMe || undefined,
          time: time,
          signature: signature,
        });
      })
      .then(function (outcome) {
        var words = OUTCOMES[outcome.reason] || OUTCOMES[outcome.state];
        show(null);
        result(words[0], words[1]);
      })
      .catch(function (err) {
        show(null);
        result('error', err.status === 404 ? 'This request expired or was already answered.' : err.message);
      });
  }

  /** A signed read: the device proves its key, for the list or the stream. */
  function signedQuery() {
    var time = Date.now();
    return sign(['read', current.deviceId, String(time)]).then(function (sig) {
      return '?device=' + encodeURIComponent(current.deviceId) + '&time=' + time + '&sig=' + sig;
    });
  }

  function refresh() {
    return signedQuery()
      .then(function (query) {
        return call('GET', '/requests' + query);
      })
      .then(function (got) {
        show(got.requests[0] || null);
      })
      .catch(function () {});
  }

  // The live stream while the app is open; polling where a browser has no EventSource.
  function connect() {
    if (!window.EventSource) {
      refresh().then(function () {
        setTimeout(connect, 3000);
      });
      return;
    }
    signedQuery().then(function (query) {
      if (source) source.close();
      source = new EventSource(api + '/stream' + query);
      source.addEventListener('request', function (event) {
        show(JSON.parse(event.data));
      });
      source.onerror = function () {
        // A closed stream (a node restarting, a stale signature) is opened again with a fresh signature.
        if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
      };
    });
  }

  function showDelivery(webPush) {
    document.querySelector('[data-delivery]').textContent = webPush
      ? 'Notifications are on: requests reach this phone when the app is closed.'
      : 'Notifications are off: keep this app open to get requests.';
  }

  /**
   * On every open: the browser's current push subscription (subscribing again
   * when notifications are allowed but the subscription is gone), sent to the
   * server signed by the device key if it is not the one the server has.
   */
  function renewSubscription() {
    return registered
      .then(function (reg) {
        if (!reg || !('PushManager' in window)) return undefined;
        return reg.pushManager.getSubscription().then(function (sub) {
          if (sub || !('Notification' in window) || Notification.permission !== 'granted') return sub;
          return subscribeToPush();
        });
      })
      .then(function (sub) {
        // No service worker here: nothing to say about the subscription the server has.
        if (sub === undefined) return undefined;
        return SteadfastRenewal.sendIfChanged(api, tenant, sub).then(function (outcome) {
          if (outcome === 'sent') {
            current.webPush = !!sub;
            current.subscription = SteadfastRenewal.fingerprint(sub);
            showDelivery(current.webPush);
          }
        });
      })
      .catch(function () {});
  }

  function start(record) {
    current = record;
    view('paired');
    document.querySelector('[data-account]').textContent = record.username + ' at ' + record.tenantName;
    showDelivery(record.webPush);
    connect();
    renewSubscription();
  }

  // --- TOTP codes: accounts this app holds -----------------------------------
  // Each account's key is encrypted with an AES-GCM key that cannot leave this
  // browser (non-extractable), bound to the account's id; decrypted only to make
  // a non-extractable HMAC key, kept in memory while the app is open.
  var VAULT_KEY = tenant + ':totp-vault';
  var ACCOUNTS_KEY = tenant + ':totp-accounts';
  var codesCard = document.querySelector('[data-codes]');
  var codeList = codesCard.querySelector('[data-code-list]');
  var noCodes = codesCard.querySelector('[data-no-codes]');
  var codeResult = codesCard.querySelector('[data-code-result]');
  var pasteForm = codesCard.querySelector('[data-paste-form]');
  var addForm = document.querySelector('[data-add-account]');
  var shownCodes = [];
  var offered = null;

  var getItem = function (key) {
    return store('readonly', function (s) {
      return s.get(key);
    });
  };
  var putItem = function (key, value) {
    return store('readwrite', function (s) {
      return s.put(value, key);
    });
  };
  var bytes = function (text) {
    return new TextEncoder().encode(text);
  };

  function vaultKey() {
    return getItem(VAULT_KEY).then(function (key) {
      if (key) return key;
      return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']).then(function (made) {
        return putItem(VAULT_KEY, made).then(function () {
          return made;
        });
      });
    });
  }

  function addAccount(parsed) {
    return vaultKey().then(function (key) {
      var iv = crypto.getRandomValues(new Uint8Array(12));
      var id = base64url(crypto.getRandomValues(new Uint8Array(12)));
      return crypto.subtle.encrypt({ name: 'AES-GCM', iv: iv, additionalData: bytes(id) }, key, parsed.secret).then(function (sealed) {
        return getItem(ACCOUNTS_KEY).then(function (list) {
          var accounts = list || [];
          accounts.push({
            id: id,
            issuer: parsed.issuer,
            account: parsed.account,
            algorithm: parsed.algorithm,
            digits: parsed.digits,
            period: parsed.period,
            iv: iv,
            sealed: new Uint8Array(sealed),
          });
          return putItem(ACCOUNTS_KEY, accounts);
        });
      });
    });
  }

  function grouped(code) {
    return code.length === 6 ? code.slice(0, 3) + ' ' + code.slice(3) : code;
  }

  function tick() {
    var now = Date.now();
    shownCodes.forEach(function (entry) {
      SteadfastTotp.totp(entry.hmac, now, entry.account.period, entry.account.digits).then(function (got) {
        entry.code.textContent = grouped(got.code);
        entry.left.textContent = 'Changes in ' + got.secondsLeft + ' s';
      });
    });
  }

  function showCodes() {
    return Promise.all([getItem(VAULT_KEY), getItem(ACCOUNTS_KEY)])
      .then(function (got) {
        var key = got[0];
        var accounts = got[1] || [];
        return Promise.all(
          accounts.map(function (account) {
            return crypto.subtle
              .decrypt({ name: 'AES-GCM', iv: account.iv, additionalData: bytes(account.id) }, key, account.sealed)
              .then(function (secret) {
                return SteadfastTotp.hmacKey(new Uint8Array(secret), account.algorithm);
              })
              .then(function (hmac) {
                return { account: account, hmac: hmac };
              });
          }),
        );
      })
      .then(function (entries) {
        codeList.textContent = '';
        shownCodes = entries.map(function (entry) {
          var item = document.createElement('li');
          var name = document.createElement('span');
          name.className = 'code-account';
          name.textContent = (entry.account.issuer ? entry.account.issuer + ': ' : '') + entry.account.account;
          var code = document.createElement('strong');
          code.className = 'totp-code';
          code.setAttribute('data-code', '');
          var left = document.createElement('span');
          left.className = 'hint';
          item.append(name, ' ', code, ' ', left, ' ', removeControl(entry.account, name.textContent));
          codeList.appendChild(item);
          return { account: entry.account, hmac: entry.hmac, code: code, left: left };
        });
        noCodes.hidden = shownCodes.length > 0;
        codesCard.hidden = false;
        tick();
      });
  }
  setInterval(tick, 1000);

  /** "Remove", then a question with its own buttons: an account's key, once gone, cannot be brought back from here. */
  function removeControl(account, label) {
    var box = document.createElement('span');
    var start = document.createElement('button');
    start.type = 'button';
    start.className = 'link';
    start.textContent = 'Remove';
    start.setAttribute('aria-label', 'Remove ' + label);
    var ask = document.createElement('span');
    ask.hidden = true;
    var yes = document.createElement('button');
    yes.type = 'button';
    yes.className = 'secondary';
    yes.textContent = 'Remove ' + label + ' for good';
    var no = document.createElement('button');
    no.type = 'button';
    no.className = 'link';
    no.textContent = 'Keep it';
    ask.append('Its codes stop here. ', yes, ' ', no);
    start.addEventListener('click', function () {
      start.hidden = true;
      ask.hidden = false;
      no.focus();
    });
    no.addEventListener('click', function () {
      ask.hidden = true;
      start.hidden = false;
      start.focus();
    });
    yes.addEventListener('click', function () {
      getItem(ACCOUNTS_KEY)
        .then(function (list) {
          return putItem(
            ACCOUNTS_KEY,
            (list || []).filter(function (a) {
              return a.id !== account.id;
            }),
          );
        })
        .then(showCodes)
        .then(function () {
          codeMessage('info', 'Account removed: ' + label + '.');
        })
        .catch(function () {
          codeMessage('error', 'The account could not be removed.');
        });
    });
    box.append(start, ask);
    return box;
  }

  function codeMessage(kind, text) {
    codeResult.className = 'alert ' + kind;
    codeResult.textContent = text;
    codeResult.hidden = false;
  }

  function added(parsed) {
    return addAccount(parsed)
      .then(showCodes)
      .then(function () {
        codeMessage('info', 'Account added: ' + (parsed.issuer ? parsed.issuer + ': ' : '') + parsed.account + '.');
      })
      .catch(function () {
        codeMessage('error', 'The account could not be added.');
      });
  }

  pasteForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var input = pasteForm.querySelector('input');
    var parsed = SteadfastTotp.parseOtpauth(input.value);
    if (!parsed) {
      codeMessage('error', 'That is not an otpauth://totp/ link this app can use.');
      input.focus();
      return;
    }
    input.value = '';
    added(parsed);
  });

  // "Add to Steadfast Authenticator" on a set-up page: the link's fragment holds the otpauth URI (a fragment never reaches a server).
  function offeredAccount() {
    if (location.hash.indexOf('#otpauth=') !== 0) return null;
    var parsed = null;
    try {
      parsed = SteadfastTotp.parseOtpauth(decodeURIComponent(location.hash.slice('#otpauth='.length)));
    } catch {
      parsed = null;
    }
    // The key should not stay in the address bar or the history.
    history.replaceState(null, '', location.pathname);
    return parsed;
  }
  function offer() {
    offered = offeredAccount();
    if (!offered) return;
    addForm.querySelector('[data-add-name]').textContent = (offered.issuer ? offered.issuer + ': ' : '') + offered.account;
    addForm.hidden = false;
    addForm.querySelector('button[type="submit"]').focus();
  }
  offer();
  // The app already open (an installed app, another tab of it) gets the link as a new fragment only.
  window.addEventListener('hashchange', offer);
  addForm.addEventListener('submit', function (event) {
    event.preventDefault();
    addForm.hidden = true;
    if (offered) added(offered);
    offered = null;
  });
  addForm.querySelector('[data-add-cancel]').addEventListener('click', function () {
    addForm.hidden = true;
    offered = null;
  });

  showCodes().catch(function () {
    codesCard.hidden = false;
    codeMessage('error', 'The codes could not be read in this browser.');
  });

  load()
    .then(function (record) {
      if (pairingToken()) return view('pair');
      if (record) return start(record);
      view('unpaired');
    })
    .catch(function () {
      view('unsupported');
    });
})();
