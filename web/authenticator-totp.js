/* global self, crypto */
// Time-based one-time passwords (RFC 6238, over HOTP, RFC 4226) in the
// Steadfast Authenticator, with WebCrypto only: reading an otpauth:// URI,
// and the code for a moment. The app keeps each secret encrypted under a
// non-extractable AES-GCM key (authenticator.js); the HMAC key made from it
// here is non-extractable too.
(function (global) {
  'use strict';

  var BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  var HASHES = { SHA1: 'SHA-1', SHA256: 'SHA-256', SHA512: 'SHA-512' };

  /** The bytes of a base32 secret (RFC 4648; spaces, lower case and padding allowed), or null. */
  function fromBase32(text) {
    var clean = String(text).replace(/[\s=]/g, '').toUpperCase();
    if (!clean || !/^[A-Z2-7]+$/.test(clean)) return null;
    var bits = 0;
    var value = 0;
    var out = [];
    for (var i = 0; i < clean.length; i++) {
      value = (value << 5) | BASE32.indexOf(clean[i]);
      bits += 5;
      if (bits >= 8) {
        out.push((value >>> (bits - 8)) & 255);
        bits -= 8;
      }
    }
    return new Uint8Array(out);
  }

  /**
   * An otpauth://totp/ URI as an account: issuer, account name, secret bytes,
   * digits, period and hash. Null when it is not one this app can show
   * (HOTP, a missing or malformed secret, odd digits or period).
   */
  function parseOtpauth(uri) {
    var url;
    try {
      url = new URL(String(uri).trim());
    } catch {
      return null;
    }
    if (url.protocol !== 'otpauth:' || url.hostname.toLowerCase() !== 'totp') return null;
    var label = decodeURIComponent(url.pathname.replace(/^\//, ''));
    var colon = label.indexOf(':');
    var params = url.searchParams;
    var secret = fromBase32(params.get('secret') || '');
    if (!secret || secret.length < 10 || secret.length > 128) return null;
    var algorithm = (params.get('algorithm') || 'SHA1').toUpperCase();
    var digits = Number(params.get('digits') || 6);
    var period = Number(params.get('period') || 30);
    if (!HASHES[algorithm] || [6, 7, 8].indexOf(digits) < 0 || !(Number.isInteger(period) && period >= 10 && period <= 300)) return null;
    var issuer = params.get('issuer') || (colon >= 0 ? label.slice(0, colon) : '');
    var account = colon >= 0 ? label.slice(colon + 1) : label;
    return {
      issuer: issuer.trim().slice(0, 100),
      account: account.trim().slice(0, 200),
      secret: secret,
      algorithm: algorithm,
      digits: digits,
      period: period,
    };
  }

  /** A non-extractable HMAC key for the secret. */
  function hmacKey(secret, algorithm) {
    return crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: HASHES[algorithm || 'SHA1'] }, false, ['sign']);
  }

  /** HOTP (RFC 4226 section 5.3) for a counter: HMAC, dynamic truncation, the low `digits` decimal digits. */
  function hotp(key, counter, digits) {
    var message = new Uint8Array(8);
    // The counter is a 64-bit big-endian number; JavaScript's bit operators stop at 32.
    var high = Math.floor(counter / 4294967296);
    var low = counter % 4294967296;
    for (var i = 3; i >= 0; i--) {
      message[i] = high & 255;
      high = Math.floor(high / 256);
      message[4 + i] = low & 255;
      low = Math.floor(low / 256);
    }
    return crypto.subtle.sign('HMAC', key, message).then(function (mac) {
      var h = new Uint8Array(mac);
      var offset = h[h.length - 1] & 15;
      var binary = ((h[offset] & 127) << 24) | (h[offset + 1] << 16) | (h[offset + 2] << 8) | h[offset + 3];
      var code = String(binary % Math.pow(10, digits));
      while (code.length < digits) code = '0' + code;
      return code;
    });
  }

  /** The TOTP code (RFC 6238) at `timeMs`, and the seconds it has left. */
  function totp(key, timeMs, period, digits) {
    var seconds = Math.floor(timeMs / 1000);
    return hotp(key, Math.floor(seconds / period), digits).then(function (code) {
      return { code: code, secondsLeft: period - (seconds % period) };
    });
  }

  global.SteadfastTotp = { fromBase32: fromBase32, parseOtpauth: parseOtpauth, hmacKey: hmacKey, hotp: hotp, totp: totp };
})(typeof self !== 'undefined' ? self : globalThis);
