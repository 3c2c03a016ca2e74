import { describe, expect, it } from 'vitest';
import { containsSecret } from '../helpers/contains-secret.ts';
import { sourceKey } from '../../src/signin/source-key.ts';
import { html, trustedHtml } from '../../src/http/page/html.ts';
import { loadConfig, ConfigError } from '../../src/config/config.ts';
import { normaliseUsername, isValidUsername } from '../../src/directory/username.ts';
import { newSortableId, normaliseBase32 } from '../../src/crypto/random.ts';
import { qrCodeSvg, warmQrCodes } from '../../src/methods/qr-code-svg.ts';

describe('source key', () => {
  it('keeps IPv4, unwraps mapped IPv4 and groups IPv6 by /64', () => {
    expect(sourceKey('203.0.113.9')).toBe('203.0.113.9');
    expect(sourceKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(sourceKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2::9')).toBe(sourceKey('2001:0db8:0001:0002:ffff::1'));
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
  });
});

describe('html', () => {
  it('escapes every interpolated value unless it is trusted', () => {
    const evil = '<script>alert("x")</script>';
    expect(html`<p>${evil}</p>`.value).toBe('<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>');
    expect(html`<p title="${"a'b"}">${trustedHtml('<b>ok</b>')}</p>`.value).toBe('<p title="a&#39;b"><b>ok</b></p>');
    expect(html`${[1, html`<i>${'&'}</i>`]}`.value).toBe('1<i>&amp;</i>');
  });
});

describe('configuration', () => {
  it('reports every problem at once', () => {
    try {
      loadConfig({
        PORT: 'x',
        STEADFAST_DATABASE_URL: 'mysql://a',
        STEADFAST_MASTER_KEY: 'short',
        STEADFAST_LOG_LEVEL: 'loud',
        STEADFAST_SESSION_IDLE_MINUTES: '0',
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(5);
    }
  });

  it('applies defaults and freezes', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 8080, host: '127.0.0.1', publicUrl: 'http://localhost:8080', sessions: { lifetimeMinutes: 720, idleMinutes: 60 } });
    expect(Object.isFrozen(config)).toBe(true);
  });
});

describe('usernames and codes', () => {
  it('normalises case and Unicode form, refuses control characters', () => {
    expect(normaliseUsername('  ALICE ')).toBe('alice');
    expect(normaliseUsername('e\u0301')).toBe(normaliseUsername('\u00e9'));
    expect(isValidUsername('alice')).toBe(true);
    expect(isValidUsername('al\nice')).toBe(false);
    expect(isValidUsername('')).toBe(false);
  });

  it('normalises typed recovery codes', () => {
    expect(normaliseBase32('abcd-efgh io1l')).toBe('ABCDEFGH1011');
  });

  it('makes ids that sort in creation order within one millisecond', () => {
    const ids = Array.from({ length: 100 }, () => newSortableId(1_700_000_000_000));
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('the leak check of the log tests', () => {
  it('finds a code standing on its own, and not inside a longer number', () => {
    expect(containsSecret('{"time":1795386654000,"msg":"x"}', '654000')).toBe(false);
    expect(containsSecret('your code is 654000.', '654000')).toBe(true);
    expect(containsSecret('"code":"654000"', '654000')).toBe(true);
    expect(containsSecret('token sfs_abc', 'sfs_abc')).toBe(true);
  });
});

describe('QR codes', () => {
  it('warms up by drawing one real code before a node takes traffic', async () => {
    const svg = await warmQrCodes();
    expect(svg).toMatch(/^<svg[^>]*viewBox="0 0 \d+ \d+"/);
    // The same drawing as any later code of that text: the warm-up is a real one, not a stand-in.
    expect(await qrCodeSvg('otpauth://totp/Steadfast:warm-up?secret=JBSWY3DPEHPK3PXP&issuer=Steadfast')).toBe(svg);
  });
});
