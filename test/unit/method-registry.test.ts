import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METHOD_MODULES, METHOD_TYPES, MethodRegistry, describeMethod, methodName, methodStrength } from '../../src/methods/registry.ts';
import type { Method } from '../../src/methods/method.ts';
import { DEFAULT_POLICY, checkPolicy } from '../../src/directory/policy.ts';
import { overviewView } from '../../src/portal/views/security-info-views.ts';
import { factorView } from '../../src/portal/views/signin-views.ts';
import { signinsView } from '../../src/portal/views/my-signins-views.ts';
import type { MethodType } from '../../src/methods/registry.ts';

/**
 * DESIGN.md: adding a method is a folder and one line in the registry. These
 * checks name every place that must learn of a method from its descriptor, and
 * fail when a page or the policy keeps a table of its own instead.
 */
describe('everything about a method derives from the registry', () => {
  const descriptors = METHOD_MODULES.map((m) => m.descriptor);
  const viewer = { tenant: { slug: 'acme', name: 'Acme' }, username: 'ada', csrf: 'csrf' };

  it('each registered method lives in its own folder with its descriptor and module', () => {
    for (const { type } of descriptors) {
      const folder = new URL(`../../src/methods/${type}/`, import.meta.url);
      expect(statSync(folder).isDirectory(), `src/methods/${type}/`).toBe(true);
      expect(readdirSync(folder)).toEqual(expect.arrayContaining([`${type}-descriptor.ts`, 'index.ts']));
    }
    expect(METHOD_TYPES).toEqual(descriptors.map((d) => d.type));
    expect(new Set(METHOD_TYPES).size).toBe(METHOD_TYPES.length);
  });

  it('the policy accepts exactly the registered types, and allows them all by default', () => {
    expect([...DEFAULT_POLICY.allowedMethods].sort()).toEqual([...METHOD_TYPES].sort());
    for (const type of METHOD_TYPES) {
      const { policy, problems } = checkPolicy({ allowedMethods: [type, 'totp'] }, DEFAULT_POLICY);
      expect(problems, type).toEqual([]);
      expect(policy.allowedMethods).toContain(type);
    }
    expect(checkPolicy({ allowedMethods: ['totp', 'carrier-pigeon'] }, DEFAULT_POLICY).problems.join(' ')).toMatch(/carrier-pigeon|method types/);
  });

  it('the security-info page offers the add form of each method a user may add, by its descriptor', () => {
    const addable = descriptors.filter((d) => d.enrolment !== null).map((d) => d.type as MethodType);
    expect(addable.length).toBeGreaterThan(0);
    const all = overviewView({
      ...viewer,
      registering: false,
      canChange: true,
      needsSecondFactor: false,
      hasPassword: true,
      signedInWithPass: false,
      methods: [],
      addable,
    });
    const none = overviewView({
      ...viewer,
      registering: false,
      canChange: true,
      needsSecondFactor: false,
      hasPassword: true,
      signedInWithPass: false,
      methods: [],
      addable: [],
    });
    for (const type of addable) {
      const alone = overviewView({
        ...viewer,
        registering: false,
        canChange: true,
        needsSecondFactor: false,
        hasPassword: true,
        signedInWithPass: false,
        methods: [],
        addable: [type],
      });
      // Offering one method adds a form the page without it does not have.
      expect(alone.length, type).toBeGreaterThan(none.length);
      expect((alone.match(/<form /g) ?? []).length, type).toBeGreaterThan((none.match(/<form /g) ?? []).length);
    }
    expect(all.length).toBeGreaterThan(none.length);
  });

  it("the sign-in page asks for each method with its descriptor's prompt, and the lists call it by its name", () => {
    for (const d of descriptors) {
      const chosen = { id: `id-${d.type}`, type: d.type, label: `my ${d.type}`, available: true, default: true };
      const page = factorView({
        tenant: viewer.tenant,
        csrf: 'csrf',
        prompt: {
          flow: 'f',
          methods: [chosen, { id: 'other', type: 'recovery-codes', label: 'codes', available: true, default: false }],
          chosen,
          challenge: {},
        },
        next: undefined,
        rememberDays: 0,
      });
      // An approval's prompt goes with its live request (the number to type): shown once a request is out.
      if (d.signin.input !== 'approval') expect(page, d.type).toContain(escape(d.signin.prompt));
      if (d.signin.input === 'numeric' || d.signin.input === 'text')
        expect(page, d.type).toContain(escape(('codeLabel' in d.signin ? d.signin.codeLabel : undefined) ?? d.name));
    }
  });

  it('the sign-in history names each method as its descriptor does', () => {
    for (const d of descriptors) {
      expect(methodName(d.type)).toBe(d.name);
      expect(describeMethod(d.type)).toBe(d);
    }
    const events = descriptors.map((d, i) => ({
      id: `e${i}`,
      at: new Date(Date.UTC(2026, 10, 30, 12, i)).toISOString(),
      step: 'second-factor',
      outcome: 'success',
      reason: 'ok',
      method: d.type,
      ip: '192.0.2.1',
      userAgent: 'Firefox',
      app: null,
      reported: false,
      current: false,
    }));
    const page = signinsView({ ...viewer, events: events as never, next: null, thisSignin: new Set() });
    for (const d of descriptors.filter((x) => x.type !== 'tap')) expect(page, d.type).toContain(escape(d.noun));
  });

  it('no page, route or other domain module keeps its own name for a method: names live in the descriptors', () => {
    const names = descriptors.map((d) => d.name);
    const offenders: string[] = [];
    for (const file of sources(new URL('../../src/', import.meta.url).pathname)) {
      if (file.includes('/src/methods/')) continue;
      // Column labels of the phone layout (data-label) repeat table headers such as a user's Email.
      const text = readFileSync(file, 'utf8').replace(/data-label="[^"]*"/g, '');
      for (const name of names)
        if ([`'${name}'`, `"${name}"`, `>${name}</h2>`, `>${name}</label>`].some((form) => text.includes(form)))
          offenders.push(`${file.replace(/.*\/src\//, 'src/')}: ${name}`);
    }
    expect(offenders).toEqual([]);
  });
});

describe('the registry of built methods', () => {
  const method = (type: string, available?: () => boolean) => ({ type, ...(available ? { available } : {}) }) as unknown as Method;

  it('finds a method by its type, and says whether it can be challenged now: unknown types never', () => {
    let up = true;
    const registry = new MethodRegistry([method('totp'), method('sms', () => up), method('webauthn'), method('email', () => false)]);
    expect(registry.types).toEqual(['totp', 'sms', 'webauthn', 'email']);
    expect(registry.get('totp')?.type).toBe('totp');
    expect(registry.get('fax')).toBeUndefined();
    // A method with no say of its own is always available; one that says no is not.
    expect([registry.available('totp'), registry.available('sms'), registry.available('email'), registry.available('fax')]).toEqual([true, true, false, false]);
    up = false;
    expect(registry.available('sms')).toBe(false);
  });

  it('gives the out-of-band view only of the methods whose descriptor says they send codes', () => {
    const registry = new MethodRegistry([method('totp'), method('sms'), method('webauthn'), method('push')]);
    expect(registry.outOfBand('sms')).toBe(registry.get('sms'));
    // Registered as out-of-band but not built here; built but not out-of-band; unknown.
    for (const type of ['voice', 'totp', 'webauthn', 'push', 'fax']) expect(registry.outOfBand(type), type).toBeUndefined();
    expect(registry.webauthn).toBe(registry.get('webauthn'));
    expect(registry.push).toBe(registry.get('push'));
    expect(new MethodRegistry([method('totp')]).push).toBeUndefined();
  });

  it('orders methods by strength, unknown ones last, and names an unknown type by itself', () => {
    const byStrength = [...METHOD_TYPES, 'carrier-pigeon'].sort((a, b) => methodStrength(b) - methodStrength(a));
    expect(byStrength.slice(0, 3)).toEqual(['webauthn', 'push', 'totp']);
    expect(byStrength.at(-1)).toBe('carrier-pigeon');
    expect(methodStrength('carrier-pigeon')).toBe(0);
    expect(methodStrength('sms')).toBeGreaterThan(methodStrength('voice'));
    expect(methodName('carrier-pigeon')).toBe('carrier-pigeon');
    expect(describeMethod('carrier-pigeon')).toBeUndefined();
  });
});

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}
