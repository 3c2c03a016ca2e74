/** Delivery providers per channel from configuration, each with its timeout and breaker settings. */
import { isSupportedCountry } from 'libphonenumber-js/min';
import { CHANNELS, type Channel } from './channel.ts';
import type { TwilioConfig } from './providers/twilio.ts';
import type { VonageConfig } from './providers/vonage.ts';
import type { WebhookConfig } from './providers/webhook.ts';
import type { SmtpConfig } from './providers/smtp.ts';

export interface BreakerSettings {
  /** Give up on one call after this long and try the next provider. */
  timeoutMs: number;
  /** Open when at least this share of recent calls failed... */
  errorPercent: number;
  /** ...and at least this many calls were made in the window. */
  volumeThreshold: number;
  /**
   * Or open after this many failures in a row, whatever the share: after a busy
   * hour of successes, a hung provider would otherwise hold every request for its
   * full timeout until it failed as often as it had succeeded.
   */
  consecutiveFailures: number;
  /** The window over which failures are counted. */
  windowMs: number;
  /** How long an open breaker waits before letting one probe through. */
  resetAfterMs: number;
}

export type ProviderConfig = (TwilioConfig | VonageConfig | WebhookConfig | SmtpConfig) & { breaker: BreakerSettings };

export interface DeliveryConfig {
  channels: Record<Channel, ProviderConfig[]>;
  code: { digits: number; lifetimeMinutes: number; maxAttempts: number; resendCooldownSeconds: number };
  limits: { perDestinationPerHour: number; perUserPerHour: number; perTenantPerHour: number; perSessionPerHour: number; perSourcePerHour: number };
  /**
   * Countries (ISO 3166 alpha-2) whose phone numbers may receive codes; every
   * country when absent. Against SMS pumping: a premium-rate number abroad is
   * refused before anything is sent.
   */
  allowedCountries?: string[];
}

const PROVIDER_TYPES: Record<Channel, string[]> = { sms: ['twilio', 'vonage', 'webhook'], voice: ['twilio', 'webhook'], email: ['smtp', 'webhook'] };

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads the `delivery` section of the config file: per channel an ordered
 * list of providers (the first is tried first), code settings and send limits.
 * Every problem is reported, each in one sentence that names where it is.
 */
export function parseDeliveryConfig(raw: unknown, problems: string[]): DeliveryConfig {
  const channels: Record<Channel, ProviderConfig[]> = { sms: [], voice: [], email: [] };
  const section = raw === undefined ? {} : raw;
  if (!isObject(section)) {
    problems.push('delivery must be an object with sms, voice and email provider lists');
    return { channels, code: defaults.code, limits: defaults.limits };
  }
  for (const key of Object.keys(section)) {
    if (![...CHANNELS, 'code', 'limits', 'allowedCountries'].includes(key))
      problems.push(`delivery.${key} is not a setting (expected sms, voice, email, code, limits or allowedCountries)`);
  }
  for (const channel of CHANNELS) {
    const list = section[channel];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      problems.push(`delivery.${channel} must be a list of providers`);
      continue;
    }
    const names = new Set<string>();
    list.forEach((entry: unknown, i) => {
      const where = `delivery.${channel}[${i}]`;
      const provider = parseProvider(channel, entry, where, problems);
      if (!provider) return;
      if (names.has(provider.name)) problems.push(`${where}: the name "${provider.name}" is used twice in ${channel}`);
      names.add(provider.name);
      channels[channel].push(provider);
    });
  }
  const reader = new FieldReader(section, 'delivery', problems);
  const code = reader.object('code');
  const limits = reader.object('limits');
  return {
    channels,
    code: {
      // NIST 800-63B asks for at least 6 digits; 8 is as many as people type reliably.
      digits: code.int('digits', defaults.code.digits, 6, 8),
      // A code that lives longer than 10 minutes is a code waiting to be phished.
      lifetimeMinutes: code.int('lifetimeMinutes', defaults.code.lifetimeMinutes, 1, 10),
      maxAttempts: code.int('maxAttempts', defaults.code.maxAttempts, 1, 5),
      resendCooldownSeconds: code.int('resendCooldownSeconds', defaults.code.resendCooldownSeconds, 5, 600),
    },
    limits: {
      perDestinationPerHour: limits.int('perDestinationPerHour', defaults.limits.perDestinationPerHour, 1, 1000),
      perUserPerHour: limits.int('perUserPerHour', defaults.limits.perUserPerHour, 1, 1000),
      perTenantPerHour: limits.int('perTenantPerHour', defaults.limits.perTenantPerHour, 1, 10_000_000),
      perSessionPerHour: limits.int('perSessionPerHour', defaults.limits.perSessionPerHour, 1, 1000),
      perSourcePerHour: limits.int('perSourcePerHour', defaults.limits.perSourcePerHour, 1, 100_000),
    },
    ...allowedCountries(section.allowedCountries, problems),
  };
}

function allowedCountries(raw: unknown, problems: string[]): { allowedCountries?: string[] } {
  if (raw === undefined) return {};
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.push('delivery.allowedCountries must be a non-empty list of country codes such as ["GB", "IE"] (leave it out to allow every country)');
    return {};
  }
  const countries = raw.map((c) => (typeof c === 'string' ? c.trim().toUpperCase() : ''));
  const unknown = raw.filter((c, i) => !isSupportedCountry(countries[i]!)).map((c) => JSON.stringify(c));
  if (unknown.length > 0)
    problems.push(
      `delivery.allowedCountries: ${unknown.join(', ')} ${unknown.length === 1 ? 'is not a country code' : 'are not country codes'} (ISO 3166 alpha-2, such as GB)`,
    );
  return { allowedCountries: countries };
}

const defaults = {
  code: { digits: 6, lifetimeMinutes: 10, maxAttempts: 5, resendCooldownSeconds: 30 },
  // A session (a sign-in or a registration) sends a handful of codes; one address, a few sessions' worth.
  limits: { perDestinationPerHour: 10, perUserPerHour: 20, perTenantPerHour: 5000, perSessionPerHour: 5, perSourcePerHour: 30 },
};

function parseProvider(channel: Channel, entry: unknown, where: string, problems: string[]): ProviderConfig | undefined {
  if (!isObject(entry)) {
    problems.push(`${where} must be an object with a name and a type`);
    return undefined;
  }
  const f = new FieldReader(entry, where, problems);
  const name = f.string('name', { pattern: /^[A-Za-z0-9_.-]{1,40}$/, hint: '1 to 40 letters, digits, dots, dashes or underscores' });
  const type = f.string('type');
  if (type === undefined || name === undefined) return undefined;
  if (!PROVIDER_TYPES[channel].includes(type)) {
    problems.push(`${where}: type "${type}" cannot carry ${channel} (use ${PROVIDER_TYPES[channel].join(' or ')})`);
    return undefined;
  }
  const breaker: BreakerSettings = {
    timeoutMs: f.int('timeoutMs', type === 'smtp' ? 5000 : 3000, 100, 60_000),
    errorPercent: f.int('errorPercent', 50, 1, 100),
    volumeThreshold: f.int('volumeThreshold', 10, 1, 1000),
    consecutiveFailures: f.int('consecutiveFailures', 3, 1, 1000),
    windowMs: f.int('windowMs', 30_000, 1000, 600_000),
    resetAfterMs: f.int('resetAfterMs', 30_000, 100, 3_600_000),
  };
  const common = ['name', 'type', 'timeoutMs', 'errorPercent', 'volumeThreshold', 'consecutiveFailures', 'windowMs', 'resetAfterMs'];
  let provider: ProviderConfig | undefined;
  if (type === 'twilio') {
    f.only([...common, 'baseUrl', 'accountSid', 'authToken', 'from']);
    const baseUrl = f.url('baseUrl', 'https://api.twilio.com');
    const accountSid = f.string('accountSid');
    const authToken = f.string('authToken');
    const from = f.string('from', { pattern: /^\+[1-9][0-9]{6,14}$|^[A-Za-z0-9 ]{1,11}$/, hint: 'an E.164 number or an alphanumeric sender id' });
    if (baseUrl && accountSid && authToken && from) provider = { name, type, baseUrl, accountSid, authToken, from, breaker };
  } else if (type === 'vonage') {
    f.only([...common, 'baseUrl', 'apiKey', 'apiSecret', 'from']);
    const baseUrl = f.url('baseUrl', 'https://rest.nexmo.com');
    const apiKey = f.string('apiKey');
    const apiSecret = f.string('apiSecret');
    const from = f.string('from');
    if (baseUrl && apiKey && apiSecret && from) provider = { name, type, baseUrl, apiKey, apiSecret, from, breaker };
  } else if (type === 'webhook') {
    f.only([...common, 'url', 'secret']);
    const url = f.url('url');
    const secret = f.string('secret', { minLength: 16, hint: 'at least 16 characters' });
    if (url && secret) provider = { name, type, url, secret, breaker };
  } else {
    f.only([...common, 'host', 'port', 'secure', 'requireTls', 'user', 'password', 'from']);
    const host = f.string('host');
    const secure = f.bool('secure', false);
    const port = f.int('port', secure ? 465 : 587, 1, 65535);
    const requireTls = f.bool('requireTls', false);
    const user = f.optionalString('user');
    const password = f.optionalString('password');
    const from = f.string('from');
    if (host && from) provider = { name, type: 'smtp', host, port, secure, requireTls, user, password, from, breaker };
  }
  return provider;
}

/** Reads typed fields from one object of the config file, noting a problem for each that is wrong. */
class FieldReader {
  constructor(
    private readonly obj: Raw,
    private readonly where: string,
    private readonly problems: string[],
  ) {}

  object(key: string): FieldReader {
    const value = this.obj[key];
    if (value !== undefined && !isObject(value)) this.problems.push(`${this.where}.${key} must be an object`);
    return new FieldReader(isObject(value) ? value : {}, `${this.where}.${key}`, this.problems);
  }

  only(keys: string[]): void {
    for (const key of Object.keys(this.obj)) if (!keys.includes(key)) this.problems.push(`${this.where}: "${key}" is not a setting of this provider type`);
  }

  string(key: string, rule: { pattern?: RegExp; minLength?: number; hint?: string } = {}): string | undefined {
    const value = this.obj[key];
    if (typeof value !== 'string' || value.length === 0) {
      this.problems.push(`${this.where}.${key} is required${rule.hint ? ` (${rule.hint})` : ''}`);
      return undefined;
    }
    if ((rule.pattern && !rule.pattern.test(value)) || (rule.minLength && value.length < rule.minLength)) {
      this.problems.push(`${this.where}.${key} must be ${rule.hint ?? 'valid'}`);
      return undefined;
    }
    return value;
  }

  optionalString(key: string): string | undefined {
    return this.obj[key] === undefined ? undefined : this.string(key);
  }

  url(key: string, fallback?: string): string | undefined {
    const value = this.obj[key] ?? fallback;
    if (value === undefined) return this.string(key, { hint: 'an http(s) URL' });
    try {
      const url = new URL(String(value));
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
      return String(value).replace(/\/+$/, '');
    } catch {
      this.problems.push(`${this.where}.${key} must be an http(s) URL`);
      return undefined;
    }
  }

  int(key: string, fallback: number, min: number, max: number): number {
    const value = this.obj[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${this.where}.${key} must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.obj[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.problems.push(`${this.where}.${key} must be true or false`);
      return fallback;
    }
    return value;
  }
}
