import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { maskDestination, normaliseDestination } from '../../src/delivery/destination.ts';
import { renderCodeMessage } from '../../src/delivery/messages.ts';
import { OneTimeCodes } from '../../src/methods/out-of-band/one-time-codes.ts';
import { KeyedHasher } from '../../src/crypto/keyed-hash.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { ManualClock } from '../../src/clock.ts';

const configProblems = (file: string, text: string): string[] => {
  const path = join(tmpdir(), `steadfast-config-${process.pid}-${file}`);
  writeFileSync(path, text);
  try {
    loadConfig({ STEADFAST_CONFIG: path, STEADFAST_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
};

describe('delivery configuration', () => {
  it('reads providers from YAML as well as JSON', () => {
    const path = join(tmpdir(), `steadfast-config-${process.pid}.yaml`);
    writeFileSync(
      path,
      [
        'delivery:',
        '  sms:',
        '    - name: primary',
        '      type: vonage',
        '      apiKey: k',
        '      apiSecret: s',
        '      from: Acme',
        '      timeoutMs: 1500',
      ].join('\n'),
    );
    const config = loadConfig({ STEADFAST_CONFIG: path });
    expect(config.delivery.channels.sms).toEqual([
      expect.objectContaining({
        name: 'primary',
        type: 'vonage',
        baseUrl: 'https://rest.nexmo.com',
        breaker: expect.objectContaining({ timeoutMs: 1500, resetAfterMs: 30_000 }),
      }),
    ]);
    expect(config.delivery.code).toEqual({ digits: 6, lifetimeMinutes: 10, maxAttempts: 5, resendCooldownSeconds: 30 });
  });

  it('names every problem at once, each with its place', () => {
    const problems = configProblems(
      'bad.json',
      JSON.stringify({
        delivery: {
          sms: [
            { name: 'a', type: 'smtp', host: 'x', from: 'y' },
            { name: 'b', type: 'twilio', accountSid: 'AC1', from: '+15005550006', timeoutMs: 5 },
            { name: 'b', type: 'webhook', url: 'ftp://gateway', secret: 'short', colour: 'blue' },
          ],
          fax: [],
          code: { digits: 4, lifetimeMinutes: 60 },
        },
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'delivery.fax is not a setting (expected sms, voice, email, code, limits or allowedCountries)',
        'delivery.sms[0]: type "smtp" cannot carry sms (use twilio or vonage or webhook)',
        'delivery.sms[1].timeoutMs must be a whole number from 100 to 60000',
        'delivery.sms[1].authToken is required',
        'delivery.sms[2]: "colour" is not a setting of this provider type',
        'delivery.sms[2].url must be an http(s) URL',
        'delivery.sms[2].secret must be at least 16 characters',
        'delivery.code.digits must be a whole number from 6 to 8',
        'delivery.code.lifetimeMinutes must be a whole number from 1 to 10',
      ]),
    );
  });

  it('refuses a config file that is not a mapping', () => {
    expect(configProblems('list.yml', '- a\n- b\n')).toEqual([expect.stringMatching(/is not a YAML mapping$/)]);
  });
});

describe('destinations', () => {
  it('normalises phone numbers to E.164 and refuses what is not one', () => {
    expect(normaliseDestination('sms', ' +44 (0)7700 900-123 '.replace('(0)', ''))).toBe('+447700900123');
    expect(normaliseDestination('voice', '+1 415.555.0100')).toBe('+14155550100');
    for (const bad of ['07700900123', '+0123456789', '+44', '+4477009001234567', 'call me']) expect(normaliseDestination('sms', bad)).toBeUndefined();
  });

  it('keeps the local part of an address and lower-cases its domain', () => {
    expect(normaliseDestination('email', 'Dora@Example.TEST')).toBe('Dora@example.test');
    for (const bad of ['dora', 'dora@', '@example.test', 'dora@example', 'a b@example.test', `${'a'.repeat(250)}@example.test`])
      expect(normaliseDestination('email', bad)).toBeUndefined();
  });

  it('masks every destination down to a hint', () => {
    expect(maskDestination('sms', '+447700900123')).toBe('+••••••••••23');
    expect(maskDestination('email', 'dora.smith@example.co.uk')).toBe('d•••@e•••.uk');
    fc.assert(
      fc.property(fc.stringMatching(/^\+[1-9][0-9]{7,14}$/), (phone) => {
        const masked = maskDestination('sms', phone);
        expect(masked.replace(/[^0-9]/g, '')).toBe(phone.slice(-2));
      }),
    );
  });
});

describe('code messages', () => {
  const base = { to: '+447700900123', code: '042917', tenantName: 'Acme', host: 'id.example.test', lifetimeMinutes: 10 };

  it('ends an SMS with the origin-bound one-time-code line', () => {
    const { text } = renderCodeMessage({ ...base, channel: 'sms' });
    expect(text.split('\n').at(-1)).toBe('@id.example.test #042917');
    expect(text.startsWith('042917 is your Acme verification code')).toBe(true);
  });

  it('reads a voice code digit by digit, twice', () => {
    expect(renderCodeMessage({ ...base, channel: 'voice' }).text.match(/0, 4, 2, 9, 1, 7/g)).toHaveLength(2);
  });

  it('keeps the code out of an email subject and escapes the tenant name in HTML', () => {
    const email = renderCodeMessage({ ...base, to: 'a@b.test', channel: 'email', tenantName: '<Acme & Co>' });
    expect(email.subject).not.toContain('042917');
    expect(email.html).toContain('&#60;Acme &#38; Co&#62;');
  });
});

describe('one-time codes', () => {
  const make = () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22));
    const store = new MemoryEphemeralStore(clock);
    return { clock, store, codes: new OneTimeCodes(store, new KeyedHasher(Buffer.alloc(32, 7)), clock, { digits: 8, lifetimeMs: 600_000, maxAttempts: 5 }) };
  };

  it('issues digits of the configured length, stored only as a keyed hash', async () => {
    const { codes, store } = make();
    const { code } = await codes.issue('flow:1:a');
    expect(code).toMatch(/^[0-9]{8}$/);
    expect(JSON.stringify(await store.get('otc:flow:1:a'))).not.toContain(code);
  });

  it('accepts the right code once', async () => {
    const { codes } = make();
    const { code } = await codes.issue('s');
    expect(await codes.check('s', code)).toBe(true);
    expect(await codes.check('s', code)).toBe(false);
  });

  it('destroys a code after five attempts, even if the fifth is followed by the right one', async () => {
    const { codes } = make();
    const { code } = await codes.issue('s');
    const wrong = code === '00000000' ? '11111111' : '00000000';
    for (let i = 0; i < 5; i++) expect(await codes.check('s', wrong)).toBe(false);
    expect(await codes.check('s', code)).toBe(false);
  });

  it('expires a code after its lifetime', async () => {
    const { codes, clock } = make();
    const { code } = await codes.issue('s');
    clock.advance(600_001);
    expect(await codes.check('s', code)).toBe(false);
  });

  it('binds a code to its scope and replaces the previous code of the same scope', async () => {
    const { codes } = make();
    const first = await codes.issue('a');
    expect(await codes.check('b', first.code)).toBe(false);
    const second = await codes.issue('a');
    if (second.code !== first.code) expect(await codes.check('a', first.code)).toBe(false);
    expect(await codes.check('a', second.code)).toBe(true);
  });
});
