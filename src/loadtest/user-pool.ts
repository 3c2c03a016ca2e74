/** The users a load test signs in as, each with the secrets it needs. */
import { randomBytes } from 'node:crypto';
import { HttpClient } from './http-client.ts';
import { SoftAuthenticator } from './soft-authenticator.ts';
import type { SmsReceiver } from './sms-receiver.ts';
import { currentStep, totpCodeAt } from './totp-code.ts';

/** A temporary user of the run and what it can sign in with. */
export interface PoolUser {
  id: string;
  username: string;
  password: string;
  totpSecret: string;
  /** The last TOTP step used: a step is accepted once per credential. */
  lastStep: number;
  passkey?: SoftAuthenticator;
  phone?: string;
  /** In a journey now: one journey at a time per user keeps steps and passkey counters in order. */
  busy: boolean;
}

export interface PoolNeeds {
  passkeys: boolean;
  sms: boolean;
}

/**
 * Creates the run's users through the admin API and sets each up the way a new
 * hire would: first sign-in, an authenticator app (TOTP), a passkey from the
 * software authenticator, a phone number confirmed by SMS. Removed afterwards.
 */
export class UserPool {
  readonly users: PoolUser[] = [];
  readonly runId = randomBytes(3).toString('hex');
  private next = 0;

  constructor(
    private readonly http: HttpClient,
    private readonly tenant: string,
    private readonly adminToken: string,
    private readonly origin: string,
    private readonly sms: SmsReceiver | undefined,
  ) {}

  async create(count: number, needs: PoolNeeds, parallel: number, onProgress: () => void): Promise<void> {
    let i = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (i < count) {
          const n = i++;
          await this.createOne(n, needs);
          onProgress();
        }
      }),
    );
  }

  private async createOne(n: number, needs: PoolNeeds): Promise<void> {
    const username = `loadtest-${this.runId}-${n}`;
    const password = randomBytes(18).toString('base64url');
    const phone = needs.sms ? `+1555${String(parseInt(this.runId, 16) % 1000).padStart(3, '0')}${String(n).padStart(4, '0')}` : undefined;
    const created = await this.http.expectPatiently(201, 'POST', '/api/v1/admin/users', { username, password }, this.adminToken);
    // Busy until set up; listed at once, so it is removed at the end even if its set-up fails.
    const user: PoolUser = { id: created.id, username, password, totpSecret: '', lastStep: 0, busy: true, ...(phone ? { phone } : {}) };
    this.users.push(user);
    const first = await this.http.expectPatiently(200, 'POST', `/api/v1/t/${this.tenant}/signin`, { username, password });
    const session: string | undefined = first.session?.token;
    if (!session)
      throw new Error(
        `the first sign-in of ${username} gave no session (state ${first.state}); the loadtest needs a tenant whose new users register their own methods`,
      );
    const totp = await this.http.expectPatiently(201, 'POST', '/api/v1/me/methods', { type: 'totp', label: 'loadtest' }, session);
    user.totpSecret = totp.secret;
    user.lastStep = currentStep();
    await this.http.expectPatiently(200, 'POST', `/api/v1/me/methods/${totp.id}/confirm`, { code: totpCodeAt(user.totpSecret, user.lastStep) }, session);
    if (needs.passkeys) {
      const authenticator = new SoftAuthenticator(this.origin);
      const options = await this.http.expectPatiently(200, 'POST', '/api/v1/me/methods/webauthn/options', {}, session);
      await this.http.expectPatiently(
        201,
        'POST',
        '/api/v1/me/methods',
        { type: 'webauthn', label: 'loadtest passkey', attestation: authenticator.register(options) },
        session,
      );
      user.passkey = authenticator;
    }
    if (phone && this.sms) {
      const waiting = this.sms.codeFor(phone);
      const method = await this.http.expectPatiently(201, 'POST', '/api/v1/me/methods', { type: 'sms', to: phone }, session);
      await this.http.expectPatiently(200, 'POST', `/api/v1/me/methods/${method.id}/confirm`, { code: await waiting }, session);
    }
    user.busy = false;
  }

  /** The next free user that `usable` accepts, marked busy; undefined when none is free. */
  take(usable: (u: PoolUser) => boolean = () => true): PoolUser | undefined {
    for (let tries = 0; tries < this.users.length; tries++) {
      const user = this.users[this.next++ % this.users.length]!;
      if (!user.busy && usable(user)) {
        user.busy = true;
        return user;
      }
    }
    return undefined;
  }

  release(user: PoolUser): void {
    user.busy = false;
  }

  /** Deletes every user the run created (their methods and sessions go with them). */
  async remove(parallel = 8): Promise<number> {
    let i = 0;
    let removed = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (i < this.users.length) {
          const user = this.users[i++]!;
          const res = await this.http.call('DELETE', `/api/v1/admin/users/${user.id}`, undefined, this.adminToken).catch(() => undefined);
          if (res && res.status < 300) removed++;
        }
      }),
    );
    return removed;
  }
}
