import { describe, expect, it } from 'vitest';

// The app's browser script sets a global, as it does in the page.
// @ts-expect-error: a plain browser script, with no types of its own (the interface below is what it offers).
await import('../../web/authenticator-totp.js');
interface Totp {
  fromBase32(text: string): Uint8Array | null;
  parseOtpauth(uri: string): { issuer: string; account: string; secret: Uint8Array; algorithm: string; digits: number; period: number } | null;
  hmacKey(secret: Uint8Array, algorithm?: string): Promise<CryptoKey>;
  hotp(key: CryptoKey, counter: number, digits: number): Promise<string>;
  totp(key: CryptoKey, timeMs: number, period: number, digits: number): Promise<{ code: string; secondsLeft: number }>;
}
const SteadfastTotp = (globalThis as unknown as { SteadfastTotp: Totp }).SteadfastTotp;
const ascii = (text: string) => new TextEncoder().encode(text);

/** The Steadfast Authenticator's codes (web/authenticator-totp.js) against the RFCs' own test vectors. */
describe('the authenticator app computes TOTP codes with WebCrypto', () => {
  it('matches RFC 4226 appendix D (HOTP, SHA-1)', async () => {
    const key = await SteadfastTotp.hmacKey(ascii('12345678901234567890'));
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    for (const [counter, code] of expected.entries()) expect(await SteadfastTotp.hotp(key, counter, 6)).toBe(code);
  });

  it('matches RFC 6238 appendix B for SHA-1, SHA-256 and SHA-512, past 2^32 seconds too', async () => {
    const seeds = { SHA1: '12345678901234567890', SHA256: '12345678901234567890123456789012', SHA512: '1234567890'.repeat(6) + '1234' };
    const vectors: [number, string, string, string][] = [
      [59, '94287082', '46119246', '90693936'],
      [1111111109, '07081804', '68084774', '25091201'],
      [1111111111, '14050471', '67062674', '99943326'],
      [1234567890, '89005924', '91819424', '93441116'],
      [2000000000, '69279037', '90698825', '38618901'],
      [20000000000, '65353130', '77737706', '47863826'],
    ];
    for (const [seconds, ...codes] of vectors) {
      for (const [i, algorithm] of (['SHA1', 'SHA256', 'SHA512'] as const).entries()) {
        const key = await SteadfastTotp.hmacKey(ascii(seeds[algorithm]), algorithm);
        expect({ seconds, algorithm, ...(await SteadfastTotp.totp(key, seconds * 1000, 30, 8)) }).toEqual({
          seconds,
          algorithm,
          code: codes[i],
          secondsLeft: 30 - (seconds % 30),
        });
      }
    }
  });

  it('reads an otpauth URI, and refuses what it cannot show', () => {
    // "12345678901234567890" in base32.
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    const parsed = SteadfastTotp.parseOtpauth(`otpauth://totp/Acme:ada%40acme.test?secret=${secret.toLowerCase()}&issuer=Acme&digits=6&period=30`);
    expect(parsed).toMatchObject({ issuer: 'Acme', account: 'ada@acme.test', algorithm: 'SHA1', digits: 6, period: 30 });
    expect(new TextDecoder().decode(parsed!.secret)).toBe('12345678901234567890');
    expect(SteadfastTotp.parseOtpauth(`otpauth://totp/ada?secret=${secret}`)).toMatchObject({ issuer: '', account: 'ada', digits: 6, period: 30 });
    for (const bad of [
      `otpauth://hotp/ada?secret=${secret}&counter=1`,
      'otpauth://totp/ada?secret=not*base32',
      'otpauth://totp/ada?secret=GEZDGNBV',
      `otpauth://totp/ada?secret=${secret}&digits=9`,
      `otpauth://totp/ada?secret=${secret}&algorithm=MD5`,
      `https://example.test/?secret=${secret}`,
      'not a uri',
    ]) {
      expect(SteadfastTotp.parseOtpauth(bad)).toBeNull();
    }
  });
});
