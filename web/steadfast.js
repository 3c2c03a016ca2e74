// Steadfast pages work without JavaScript; this script adds what only a
// browser can do: WebAuthn ceremonies, times in the reader's own zone, and
// copying recovery codes, keys and passes. It runs under a CSP that forbids inline script, so
// everything it needs comes from data attributes and JSON data blocks.
(function () {
  'use strict';

  // Times: the server writes UTC; show them in the browser's zone.
  document.querySelectorAll('time[data-local]').forEach(function (el) {
    var date = new Date(el.getAttribute('datetime'));
    if (!isNaN(date.getTime())) {
      el.title = el.textContent;
      el.textContent = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    }
  });

  // Copy buttons: hidden until the clipboard is usable.
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      // A key shown in groups is copied without the spaces between them.
      navigator.clipboard.writeText(source.getAttribute('data-copy-text') || source.innerText).then(function () {
        button.textContent = 'Copied';
      });
    });
  });

  // Push approval: watch the request and move on by itself once it is answered (or has expired);
  // the verify form then finishes the sign-in or says why not. Without JavaScript, "I approved it" does the same.
  document.querySelectorAll('form[data-push-status]').forEach(function (form) {
    var url = form.getAttribute('data-push-status');
    var shown = form.querySelector('[data-push-state]');
    var done = false;
    var words = { approved: 'Approved. Signing you in…', denied: 'The request was not approved.', expired: 'The request expired.' };
    function look() {
      if (done) return;
      fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' } })
        .then(function (res) {
          return res.ok ? res.json() : { state: res.status === 404 ? 'expired' : 'pending' };
        })
        .then(function (body) {
          if (body.state === 'pending' || body.state === 'none') return setTimeout(look, 1500);
          done = true;
          if (shown && words[body.state]) shown.textContent = words[body.state];
          form.submit();
        })
        .catch(function () {
          setTimeout(look, 3000);
        });
    }
    setTimeout(look, 1000);
  });

  var swa = window.SimpleWebAuthnBrowser;
  if (!swa || !swa.browserSupportsWebAuthn()) return;

  document.querySelectorAll('[data-webauthn-missing]').forEach(function (el) {
    el.hidden = true;
  });

  function fail(form, message) {
    var box = form.querySelector('[data-webauthn-error]');
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function readableError(err) {
    if (err && err.name === 'NotAllowedError') return 'The request was cancelled or timed out. Try again.';
    if (err && err.name === 'InvalidStateError') return 'This authenticator is already registered.';
    return (err && err.message) || 'Something went wrong. Try again.';
  }

  // Options come from a JSON block in the page, or from the API (registration, passkey sign-in).
  function options(form) {
    var id = form.getAttribute('data-options-id');
    if (id) return Promise.resolve({ options: JSON.parse(document.getElementById(id).textContent) });
    return fetch(form.getAttribute('data-options-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(form.getAttribute('data-kind') ? { kind: form.getAttribute('data-kind') } : {}),
    }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.detail || body.title || 'The server refused the request.');
        return body.webauthn ? { options: body.webauthn, flow: body.flow } : { options: body };
      });
    });
  }

  function finish(form, mode, result, flow) {
    form.querySelector('input[name="' + (mode === 'register' ? 'attestation' : 'assertion') + '"]').value = JSON.stringify(result);
    if (flow) form.querySelector('input[name="flow"]').value = flow;
    form.setAttribute('data-done', '1');
    form.submit();
  }

  function ceremony(form, useAutofill) {
    var mode = form.getAttribute('data-webauthn');
    return options(form).then(function (got) {
      var run =
        mode === 'register'
          ? swa.startRegistration({ optionsJSON: got.options })
          : swa.startAuthentication({ optionsJSON: got.options, useBrowserAutofill: useAutofill });
      return run.then(function (result) {
        finish(form, mode, result, got.flow);
      });
    });
  }

  document.querySelectorAll('form[data-webauthn]').forEach(function (form) {
    form.querySelectorAll('[data-webauthn-only]').forEach(function (el) {
      el.disabled = false;
    });
    form.addEventListener('submit', function (event) {
      if (form.getAttribute('data-done')) return;
      event.preventDefault();
      ceremony(form, false).catch(function (err) {
        fail(form, readableError(err));
      });
    });
  });

  // Passkey autofill: the username field offers this site's passkeys where the browser can.
  var passkeyForm = document.querySelector('form[data-webauthn="passkey"]');
  if (passkeyForm && swa.browserSupportsWebAuthnAutofill) {
    swa.browserSupportsWebAuthnAutofill().then(function (supported) {
      if (supported) ceremony(passkeyForm, true).catch(function () {});
    });
  }
})();
