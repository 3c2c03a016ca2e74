import { describe, expect, it } from 'vitest';
import { requestClass } from '../../src/admission/request-class.ts';
import { REGISTRATION_TOKEN_PREFIX } from '../../src/sessions/registration-token.ts';

describe('request class at the door', () => {
  const registration = `${REGISTRATION_TOKEN_PREFIX}${'A'.repeat(43)}`;
  const full = `sfs_${'A'.repeat(43)}`;

  it('ranks self-service calls of a registration-scoped session with finishing sign-ins, from the bearer token or the cookie', () => {
    expect(requestClass('self-service', { authorization: `Bearer ${registration}` })).toBe('finish-registration');
    expect(requestClass('self-service', { cookie: `sf_csrf=x; sf_session=${registration}; other=1` })).toBe('finish-registration');
    expect(requestClass('self-service', { authorization: `Bearer ${full}` })).toBe('self-service');
    expect(requestClass('self-service', { cookie: `sf_session=${full}` })).toBe('self-service');
    expect(requestClass('self-service', {})).toBe('self-service');
    // Headers that carry no session token: another scheme, a cookie without the session's.
    expect(requestClass('self-service', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).toBe('self-service');
    expect(requestClass('self-service', { cookie: 'sf_csrf=x; other=1' })).toBe('self-service');
    // A bearer header decides even when a cookie says otherwise, as authentication does.
    expect(requestClass('self-service', { authorization: `Bearer ${full}`, cookie: `sf_session=${registration}` })).toBe('self-service');
  });

  it('leaves every other class as the route says, and files unknown paths as admin', () => {
    expect(requestClass('start-signin', { authorization: `Bearer ${registration}` })).toBe('start-signin');
    expect(requestClass('admin', { authorization: `Bearer ${registration}` })).toBe('admin');
    expect(requestClass('admin-emergency', {})).toBe('admin-emergency');
    expect(requestClass(undefined, {})).toBe('admin');
    expect(requestClass('ops', {})).toBe('ops');
  });
});
