import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import type { Channel } from './channel.ts';

const E164 = /^\+[1-9][0-9]{7,14}$/;
// Deliberately plain: one @, something on each side, a dot in the domain, no spaces.
const EMAIL = /^[^\s@"<>()\\,;:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/**
 * A destination in its one canonical form (E.164 for phones, lower-case
 * domain for email), or undefined when it is not one. Spaces, dashes, dots and
 * brackets people type in phone numbers are allowed and dropped.
 */
export function normaliseDestination(channel: Channel, input: string): string | undefined {
  const text = input.normalize('NFKC').trim();
  if (channel === 'email') {
    if (text.length > 254 || !EMAIL.test(text)) return undefined;
    const at = text.lastIndexOf('@');
    return `${text.slice(0, at)}@${text.slice(at + 1).toLowerCase()}`;
  }
  const phone = text.replace(/[\s().-]/g, '');
  return E164.test(phone) ? phone : undefined;
}

/** What answers and pages show instead of the destination: enough to recognise it, too little to use it. */
export function maskDestination(channel: Channel, destination: string): string {
  if (channel === 'email') {
    const at = destination.lastIndexOf('@');
    const local = destination.slice(0, at);
    const domain = destination.slice(at + 1);
    const dot = domain.lastIndexOf('.');
    return `${local[0]}•••@${domain[0]}•••${domain.slice(dot)}`;
  }
  return `+${'•'.repeat(Math.max(0, destination.length - 3))}${destination.slice(-2)}`;
}

/**
 * Whom a destination reaches, for send limits: an email address without the
 * case of its local part or a `+tag`, which the mailbox ignores but which would
 * otherwise make each variant a fresh destination with a fresh limit.
 */
export function destinationIdentity(channel: Channel, destination: string): string {
  if (channel !== 'email') return destination;
  const at = destination.lastIndexOf('@');
  const local = destination.slice(0, at).toLowerCase().replace(/\+.*$/, '');
  return `${local}@${destination.slice(at + 1).toLowerCase()}`;
}

/** Whether a phone number (E.164) belongs to one of the allowed countries; every number when there is no list. */
export function phoneCountryAllowed(phone: string, allowed: readonly string[] | undefined): boolean {
  if (!allowed) return true;
  const country = parsePhoneNumberFromString(phone)?.country;
  return country !== undefined && allowed.includes(country);
}
