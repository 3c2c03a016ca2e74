import { Type, type FastifyPluginAsyncTypebox, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import { problemCatalog } from '../errors/catalog.ts';
import type { Principal } from '../http/authenticate.ts';
import type { Services } from '../server/services.ts';
import { checkPolicy, RETENTION_BOUNDS, type TenantPolicy } from '../directory/policy.ts';
import { METHOD_TYPES, methodName } from '../methods/registry.ts';
import { html, type SafeHtml } from '../http/page/html.ts';
import { alert, layout } from '../http/page/layout.ts';
import { clusterWarning } from './cluster-warning.ts';
import { principalPages } from '../portal/principal-page.ts';
import { formRoute } from '../http/page/form-route.ts';
import { when } from '../http/page/parts/when.ts';
import { describeUserAgent } from '../http/page/user-agent.ts';
import { sendSigninExport } from './csv.ts';
import { isoTime } from '../server/routes/schemas.ts';
import { randomToken } from '../crypto/random.ts';
import { signinFilter } from './admin-api.ts';
import { parseRecord } from '../store/parse-record.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const UserParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const LogQuery = Type.Object({ user: Field(256), outcome: Field(10), method: Field(32), since: Field(40), until: Field(40), cursor: Field(200) });

type Notice = { kind: 'error' | 'info'; text: string };
type Section = 'users' | 'signins' | 'audit' | 'policy';


/** A date from a date picker (YYYY-MM-DD, a whole UTC day) or a full date-time, as the API filter takes it. */
function dayBound(value: string | undefined, end: boolean): string | undefined {
  if (!value) return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const start = Date.parse(`${value}T00:00:00Z`);
    if (Number.isNaN(start)) throw new AppError('invalid-request', `${value} is not a date`);
    return isoTime(end ? start + 86_400_000 : start);
  }
  return value;
}

/**
 * The admin console: users (search, add, a user's methods, sessions, sign-ins
 * and the actions on them), the sign-in log with filters and CSV, the audit
 * log, and the policy editor. For users the tenant made administrators,
 * signed in with a second factor. Every action goes through the same
 * Administration service as the API, so it is audited the same way.
 */
export function adminConsolePages(services: Services): FastifyPluginAsyncTypebox {
  const { principalOr, shownError } = principalPages(services);
  const { admin } = services;
  return async (app) => {
    const base = (p: Principal) => `/t/${p.tenant.slug}/admin`;
    const actor = (p: Principal) => `user:${p.user.id}`;
    const form = <P extends TSchema, B extends TSchema>(params: P, body: B) => formRoute(app, 'admin', params, body);
    const view = <P extends TSchema, Q extends TSchema>(params: P, querystring: Q) => ({ schema: { params, querystring, hide: true }, config: { admissionClass: 'admin' as const } });

    /**
     * The signed-in administrator, or undefined after a redirect to sign in or a
     * refusal page. A change (`change`) also needs a sign-in within the last 10
     * minutes: an administrator's forgotten session must not reset anyone.
     */
    const adminOr = async (request: FastifyRequest, reply: FastifyReply, options: { change?: boolean } = {}): Promise<Principal | undefined> => {
      const p = await principalOr(request, reply, 'admin');
      if (!p) return undefined;
      try {
        services.auth.requireAdministrator(p, options.change === true);
        return p;
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        const refusal = (title: string, body: SafeHtml) =>
          void reply
            .code(403)
            .type('text/html; charset=utf-8')
            .header('cache-control', 'no-store')
            .send(layout({ title, tenantName: p.tenant.name, signedInAs: p.user.username, body: html`<div class="card"><h1>${title}</h1>${body}</div>` }));
        const signInAgain = html`<form method="post" action="/t/${p.tenant.slug}/signout"><input type="hidden" name="_csrf" value="${reply.generateCsrf()}"><input type="hidden" name="next" value="admin"><button type="submit">Sign in again</button></form>`;
        if (err.code === 'reauthentication-required') {
          refusal("Confirm it's you", html`<p>Changes in the admin console need a sign-in within the last 10 minutes. Nothing was changed.</p>${signInAgain}`);
        } else if (err.code === 'second-factor-required') {
          refusal('Sign in with a second factor', html`<p>The admin console needs a sign-in with a second factor (your passkey, authenticator app or another method), even where your organisation does not require one for everyone.</p>${signInAgain}`);
        } else {
          refusal('Not an administrator', html`<p>Your account cannot use the admin console of ${p.tenant.name}. Ask an administrator if you need access.</p>`);
        }
        return undefined;
      }
    };

    const page = (reply: FastifyReply, p: Principal, section: Section, title: string, body: SafeHtml, status = 200) => {
      const link = (s: Section, path: string, label: string) => html`<a href="${base(p)}${path}"${s === section ? html` aria-current="page"` : ''}>${label}</a>`;
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          layout({
            title,
            tenantName: p.tenant.name,
            wide: true,
            scripts: true,
            signedInAs: p.user.username,
            signOut: { action: `/t/${p.tenant.slug}/signout`, csrf: reply.generateCsrf() },
            body: html`<nav class="admin" aria-label="Admin console">${link('users', '', 'Users')}${link('signins', '/signins', 'Sign-in log')}${link('audit', '/audit', 'Audit log')}${link('policy', '/policy', 'Policy')}</nav>
${clusterWarning(services.cluster)}<div class="card">${body}</div>`,
          }),
        );
    };

    // ---- Users ---------------------------------------------------------------

    const usersPage = async (reply: FastifyReply, p: Principal, q: string, notice?: Notice, status = 200) => {
      const users = await admin.searchUsers(p.tenant, q, 50);
      const csrf = reply.generateCsrf();
      return page(
        reply,
        p,
        'users',
        'Users',
        html`<h1>Users</h1>
${notice ? alert(notice.kind, notice.text) : ''}
<form method="get" action="${base(p)}" role="search">
  <label for="q">Search users</label>
  <input type="search" id="q" name="q" value="${q}" placeholder="Username or email">
  <button type="submit" class="secondary">Search</button>
</form>
<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">Username</th><th scope="col">Email</th><th scope="col">Status</th><th scope="col">Notes</th></tr></thead>
<tbody>${users.map(
          (u) => html`<tr><td data-label="Username"><a href="${base(p)}/users/${u.id}">${u.username}</a></td><td data-label="Email">${u.email ?? ''}</td><td data-label="Status">${u.status}</td>
<td data-label="Notes">${[u.isAdmin ? 'administrator' : '', u.breakGlass ? 'break-glass' : '', u.flaggedAt ? 'reported a sign-in' : '', u.mustRegister ? 'must register' : ''].filter(Boolean).join(', ')}</td></tr>`,
        )}</tbody></table></div>
${users.length === 0 ? html`<p>No users match.</p>` : ''}
<h2>Add a user</h2>
<form method="post" action="${base(p)}/users" novalidate>
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="new-username">Username</label>
  <input type="text" id="new-username" name="username" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="256" required>
  <label for="new-email">Email (optional)</label>
  <input type="email" id="new-email" name="email" autocomplete="off" maxlength="320">
  <p class="hint">New users have no password. Give them a Temporary Access Pass from their page to sign in and set up their methods.</p>
  <button type="submit">Add user</button>
</form>`,
        status,
      );
    };

    app.get('/t/:tenant/admin', view(PageParams, Type.Object({ q: Field(256) })), async (request, reply) => {
      const p = await adminOr(request, reply);
      return p ? usersPage(reply, p, request.query.q ?? '') : reply;
    });

    app.post('/t/:tenant/admin/users', form(PageParams, Type.Object({ username: Field(256), email: Field(320), _csrf: Field() })), async (request, reply) => {
      const p = await adminOr(request, reply, { change: true });
      if (!p) return reply;
      try {
        const user = await admin.createUser(p.tenant, actor(p), { username: request.body.username ?? '', email: request.body.email?.trim() || undefined });
        return await userPage(reply, p, user.id, { kind: 'info', text: `User ${user.username} added. Issue a Temporary Access Pass so they can sign in.` });
      } catch (err) {
        const { text, status } = shownError(err);
        return usersPage(reply, p, '', { kind: 'error', text }, status);
      }
    });

    const userPage = async (reply: FastifyReply, p: Principal, id: string, notice?: Notice, issued?: { code: string; expiresAt: string; oneTime: boolean }, status = 200) => {
      const d = await admin.userDetail(p.tenant, id);
      const csrf = reply.generateCsrf();
      const hidden = html`<input type="hidden" name="_csrf" value="${csrf}">`;
      const action = (path: string, label: string, kind: 'secondary' | 'danger' = 'secondary') =>
        html`<form method="post" action="${base(p)}/users/${id}/${path}" class="inline">${hidden}<button type="submit" class="${kind}">${label}</button></form>`;
      const { tap } = p.tenant.policy;
      const u = d.user;
      return page(
        reply,
        p,
        'users',
        u.username,
        html`<h1>${u.username}</h1>
${notice ? alert(notice.kind, notice.text) : ''}
${
  issued
    ? html`<div role="status"><p>Temporary Access Pass for ${u.username}, ${issued.oneTime ? 'usable once' : 'usable until it expires'}, valid until ${when(issued.expiresAt)}. It is shown only now: give it to the person over a channel you trust.</p>
<p><code class="secret-once" aria-label="Temporary Access Pass">${issued.code}</code></p></div>`
    : ''
}
<p>${u.email ?? 'No email'} · ${u.phone ?? 'no phone'} · account ${u.status}${u.isAdmin ? ' · administrator' : ''}${u.breakGlass ? ' · break-glass account' : ''}${d.hasPassword ? '' : ' · no password'}</p>
${u.flaggedAt ? alert('error', `This user reported a sign-in as not theirs (${new Date(u.flaggedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC).`) : ''}

<h2>Temporary Access Pass</h2>
${
  d.accessPass
    ? html`<p>Active: ${d.accessPass.oneTime ? 'one-time' : 'multi-use'}, used ${d.accessPass.uses} times, expires ${when(isoTime(d.accessPass.expiresAt))}. ${action('tap/revoke', 'Revoke pass', 'danger')}</p>`
    : html`<p>None active.</p>`
}
<form method="post" action="${base(p)}/users/${id}/tap" novalidate>
  ${hidden}
  <label for="tap-minutes">Valid for (minutes, ${tap.minMinutes} to ${tap.maxMinutes})</label>
  <input type="number" id="tap-minutes" name="minutes" min="${tap.minMinutes}" max="${tap.maxMinutes}" value="${tap.defaultMinutes}" required>
  <label class="check"><input type="checkbox" name="oneTime" value="on"${tap.oneTimeDefault ? html` checked` : ''}> Usable once</label>
  <button type="submit">${d.accessPass ? 'Issue a new pass (replaces the active one)' : 'Issue pass'}</button>
</form>

<h2>Methods</h2>
${
  d.methods.length === 0
    ? html`<p>No methods${u.mustRegister ? '; the user must register one at the next sign-in' : ''}.</p>`
    : html`<ul class="methods">${d.methods.map((m) => html`<li><span><strong>${methodName(m.type)}</strong>: ${m.label}${m.state === 'pending' ? ' (not confirmed)' : ''}${m.default ? ' (default)' : ''}<br><span class="hint">Added ${when(m.createdAt)}; last used ${when(m.lastUsedAt)}</span></span></li>`)}</ul>`
}
<p>${action('reset-methods', 'Reset methods', 'danger')} <span class="hint">Removes every method and ends every session; the user registers again at the next sign-in.</span></p>

<h2>Sessions</h2>
${
  d.sessions.length === 0
    ? html`<p>No active sessions.</p>`
    : html`<ul class="methods">${d.sessions.map((s) => html`<li><span>${describeUserAgent(s.userAgent)} · ${s.ip ?? ''}<br><span class="hint">Started ${when(isoTime(s.createdAt))}; last seen ${when(isoTime(s.lastSeenAt))}${s.scope === 'register' ? '; registration only' : ''}</span></span></li>`)}</ul>
<p>${action('revoke-sessions', 'End all sessions', 'danger')}</p>`
}

<h2>Recent sign-ins</h2>
${signinTable(d.recentSignins)}
<p><a href="${base(p)}/signins?user=${encodeURIComponent(u.username)}">All sign-ins of ${u.username}</a> · <a href="${base(p)}/audit?user=${u.id}">Audit entries</a></p>

<h2>Account</h2>
<p>${u.status === 'active' ? action('disable', 'Disable account', 'danger') : action('enable', 'Enable account')}</p>`,
        status,
      );
    };

    const signinTable = (items: { at: number; username: string; ip: string | null; userAgent: string | null; step: string; method: string | null; outcome: string; reason: string; reportedAt: number | null }[]) =>
      items.length === 0
        ? html`<p>No sign-ins.</p>`
        : html`<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">When</th><th scope="col">User</th><th scope="col">From</th><th scope="col">Step</th><th scope="col">Method</th><th scope="col">Outcome</th></tr></thead>
<tbody>${items.map(
            (e) => html`<tr><td data-label="When">${when(isoTime(e.at))}</td><td data-label="User">${e.username}</td><td data-label="From">${e.ip ?? ''} · ${describeUserAgent(e.userAgent)}</td><td data-label="Step">${e.step}</td><td data-label="Method">${e.method ?? ''}</td>
<td data-label="Outcome">${e.outcome}${e.reason !== 'ok' ? ` (${e.reason.replace(/_/g, ' ')})` : ''}${e.reportedAt ? ' · reported: not me' : ''}</td></tr>`,
          )}</tbody></table></div>`;

    /**
     * A new pass is shown on a page of its own, reached by a redirect: a refresh
     * of the page after the post would issue another. The code waits for that
     * one view, sealed, in the ephemeral store, and is taken when shown.
     */
    type IssuedView = { code: string; expiresAt: string; oneTime: boolean };
    const viewKey = (p: Principal, userId: string, key: string) => `tap-view:${p.tenant.id}:${p.user.id}:${userId}:${key}`;
    const holdForView = async (p: Principal, userId: string, issued: IssuedView): Promise<string> => {
      const key = randomToken(16);
      await services.ephemeral.set(viewKey(p, userId, key), services.keyRing.seal(JSON.stringify(issued), viewKey(p, userId, key)), 120_000);
      return key;
    };
    const takeView = async (p: Principal, userId: string, key: string | undefined): Promise<IssuedView | undefined> => {
      if (!key || !/^[A-Za-z0-9_-]{10,40}$/.test(key)) return undefined;
      const sealed = parseRecord(Type.String(), await services.ephemeral.take(viewKey(p, userId, key)));
      return sealed ? (JSON.parse(services.keyRing.open(sealed, viewKey(p, userId, key)).toString('utf8')) as IssuedView) : undefined;
    };

    app.get('/t/:tenant/admin/users/:id', view(UserParams, Type.Object({ issued: Field(40) })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const issued = await takeView(p, request.params.id, request.query.issued);
      if (request.query.issued && !issued) return userPage(reply, p, request.params.id, { kind: 'info', text: 'The pass was shown once and is not shown again. Issue a new one if it was lost.' });
      return userPage(reply, p, request.params.id, issued ? { kind: 'info', text: 'Temporary Access Pass issued.' } : undefined, issued);
    });

    /** Runs an action on a user and shows their page with the outcome. */
    const userAction = (
      path: string,
      run: (p: Principal, id: string, body: { minutes?: string | undefined; oneTime?: string | undefined }) => Promise<{ notice: string; issued?: { code: string; expiresAt: string; oneTime: boolean } }>,
      admissionClass: 'admin' | 'admin-emergency' = 'admin',
    ) =>
      app.post(`/t/:tenant/admin/users/:id/${path}`, formRoute(app, admissionClass, UserParams, Type.Object({ _csrf: Field(), minutes: Field(10), oneTime: Field(5) })), async (request, reply) => {
        const p = await adminOr(request, reply, { change: true });
        if (!p) return reply;
        const { id } = request.params;
        try {
          const { notice, issued } = await run(p, id, request.body);
          if (issued) return reply.redirect(`${base(p)}/users/${encodeURIComponent(id)}?issued=${await holdForView(p, id, issued)}`, 303);
          return await userPage(reply, p, id, { kind: 'info', text: notice });
        } catch (err) {
          const { text, status } = shownError(err);
          // An unknown user (or one of another tenant) has no page to go back to.
          if (err instanceof AppError && err.code === 'not-found') return usersPage(reply, p, '', { kind: 'error', text }, status);
          return userPage(reply, p, id, { kind: 'error', text }, undefined, status);
        }
      });

    userAction('tap', async (p, id, body) => {
      const minutes = body.minutes ? Number(body.minutes) : undefined;
      if (minutes !== undefined && !Number.isInteger(minutes)) throw new AppError('invalid-request', 'enter the lifetime as a whole number of minutes');
      const issued = await admin.issuePass(p.tenant, actor(p), id, { minutes, oneTime: body.oneTime === 'on' });
      return { notice: 'Temporary Access Pass issued.', issued };
    }, 'admin-emergency');
    userAction('tap/revoke', async (p, id) => {
      await admin.revokePass(p.tenant, actor(p), id);
      return { notice: 'Temporary Access Pass revoked.' };
    });
    userAction('reset-methods', async (p, id) => {
      const { removed, sessionsEnded } = await admin.resetMethods(p.tenant, actor(p), id);
      return { notice: `Methods reset: ${removed} removed, ${sessionsEnded} sessions ended. The user registers again at the next sign-in.` };
    }, 'admin-emergency');
    userAction('revoke-sessions', async (p, id) => ({ notice: `${await admin.revokeSessions(p.tenant, actor(p), id)} sessions ended.` }), 'admin-emergency');
    userAction('disable', async (p, id) => {
      if (id === p.user.id) throw new AppError('invalid-state', 'you cannot disable your own account');
      await admin.updateUser(p.tenant, actor(p), id, { status: 'disabled' });
      return { notice: 'Account disabled; every session ended.' };
    });
    userAction('enable', async (p, id) => {
      await admin.updateUser(p.tenant, actor(p), id, { status: 'active' });
      return { notice: 'Account enabled.' };
    });

    // ---- Sign-in log ----------------------------------------------------------

    const logFilter = async (p: Principal, q: { user?: string | undefined; outcome?: string | undefined; method?: string | undefined; since?: string | undefined; until?: string | undefined }) =>
      signinFilter(services, p.tenant, {
        user: q.user?.trim() || undefined,
        outcome: q.outcome === 'success' || q.outcome === 'failure' ? q.outcome : undefined,
        method: q.method || undefined,
        since: dayBound(q.since, false),
        until: dayBound(q.until, true),
      });

    app.get('/t/:tenant/admin/signins', view(PageParams, LogQuery), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const q = request.query;
      let items: Awaited<ReturnType<typeof admin.signins>>['items'] = [];
      let next: string | null = null;
      let error: string | undefined;
      try {
        ({ items, next } = await admin.signins(p.tenant, await logFilter(p, q), 50, q.cursor));
      } catch (err) {
        error = shownError(err).text;
      }
      const params = new URLSearchParams(Object.entries({ user: q.user, outcome: q.outcome, method: q.method, since: q.since, until: q.until }).filter((e): e is [string, string] => Boolean(e[1])));
      const option = (value: string, label: string, current: string | undefined) => html`<option value="${value}"${value === (current ?? '') ? html` selected` : ''}>${label}</option>`;
      return page(
        reply,
        p,
        'signins',
        'Sign-in log',
        html`<h1>Sign-in log</h1>
${alert('error', error)}
<form method="get" action="${base(p)}/signins" class="filters" aria-label="Filter the sign-in log">
  <div><label for="f-user">User</label><input type="text" id="f-user" name="user" value="${q.user ?? ''}" autocapitalize="none"></div>
  <div><label for="f-outcome">Outcome</label><select id="f-outcome" name="outcome">${option('', 'Any', q.outcome)}${option('success', 'Success', q.outcome)}${option('failure', 'Failure', q.outcome)}</select></div>
  <div><label for="f-method">Method</label><select id="f-method" name="method">${option('', 'Any', q.method)}${option('password', 'Password', q.method)}${option('passkey', 'Passkey (no password)', q.method)}${METHOD_TYPES.map((m) => option(m, methodName(m), q.method))}</select></div>
  <div><label for="f-since">From</label><input type="date" id="f-since" name="since" value="${q.since ?? ''}"></div>
  <div><label for="f-until">To</label><input type="date" id="f-until" name="until" value="${q.until ?? ''}"></div>
  <div><button type="submit">Filter</button></div>
</form>
<p><a href="${base(p)}/signins.csv?${params.toString()}" download>Download as CSV</a></p>
${signinTable(items)}
${next ? html`<p><a href="${base(p)}/signins?${params.toString()}&cursor=${encodeURIComponent(next)}">Older sign-ins</a></p>` : ''}`,
        error ? 400 : 200,
      );
    });

    app.get('/t/:tenant/admin/signins.csv', view(PageParams, LogQuery), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      return sendSigninExport(reply, admin, p.tenant, await logFilter(p, request.query), 'csv');
    });

    // ---- Audit log ------------------------------------------------------------

    app.get('/t/:tenant/admin/audit', view(PageParams, Type.Object({ before: Field(20), user: Field(64) })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const before = request.query.before && /^\d{1,15}$/.test(request.query.before) ? Number(request.query.before) : undefined;
      const entries = await admin.auditLog(p.tenant, { limit: 50, before, userId: request.query.user || undefined });
      return page(
        reply,
        p,
        'audit',
        'Audit log',
        html`<h1>Audit log</h1>
<p class="hint">Every entry carries the hash of the one before it; <code>steadfast audit verify</code> checks the chain.</p>
${
  entries.length === 0
    ? html`<p>No entries.</p>`
    : html`<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">User</th><th scope="col">Details</th></tr></thead>
<tbody>${entries.map(
        (e) => html`<tr><td data-label="#">${e.seq}</td><td data-label="When">${when(isoTime(e.at))}</td><td data-label="Who">${e.actor}</td><td data-label="What">${e.action}</td>
<td data-label="User">${e.targetUserId ? html`<a href="${base(p)}/users/${e.targetUserId}">${e.targetUserId.slice(0, 8)}</a>` : ''}</td><td data-label="Details"><pre>${JSON.stringify(e.details)}</pre></td></tr>`,
      )}</tbody></table></div>`
}
${entries.length === 50 ? html`<p><a href="${base(p)}/audit?before=${entries.at(-1)!.seq}${request.query.user ? `&user=${encodeURIComponent(request.query.user)}` : ''}">Older entries</a></p>` : ''}`,
      );
    });

    // ---- Policy ---------------------------------------------------------------

    const policyPage = (reply: FastifyReply, p: Principal, policy: TenantPolicy, notice?: Notice, problems: string[] = [], status = 200) => {
      const checked = (on: boolean) => (on ? html` checked` : '');
      const number = (id: string, name: string, label: string, value: number, min: number, max: number) =>
        html`<label for="${id}">${label}</label><input type="number" id="${id}" name="${name}" value="${value}" min="${min}" max="${max}" required>`;
      return page(
        reply,
        p,
        'policy',
        'Policy',
        html`<h1>Sign-in policy</h1>
${notice ? alert(notice.kind, notice.text) : ''}
${problems.length > 0 ? html`<ul class="problems" role="alert">${problems.map((x) => html`<li>${x}</li>`)}</ul>` : ''}
<form method="post" action="${base(p)}/policy" novalidate>
  <input type="hidden" name="_csrf" value="${reply.generateCsrf()}">
  <label class="check"><input type="checkbox" name="mfaRequired" value="on"${checked(policy.mfaRequired)}> Require a second factor at every sign-in</label>
  <fieldset><legend>Methods users may use</legend>
  ${METHOD_TYPES.map((m) => html`<label class="check"><input type="checkbox" name="allowedMethods" value="${m}"${checked(policy.allowedMethods.includes(m))}> ${methodName(m)}</label>`)}
  </fieldset>
  <fieldset><legend>Temporary Access Passes</legend>
  ${number('tap-min', 'tapMinMinutes', 'Shortest lifetime (minutes)', policy.tap.minMinutes, 10, 43200)}
  ${number('tap-max', 'tapMaxMinutes', 'Longest lifetime (minutes)', policy.tap.maxMinutes, 10, 43200)}
  ${number('tap-default', 'tapDefaultMinutes', 'Offered lifetime (minutes)', policy.tap.defaultMinutes, 10, 43200)}
  <label class="check"><input type="checkbox" name="tapOneTimeDefault" value="on"${checked(policy.tap.oneTimeDefault)}> Passes are usable once unless chosen otherwise</label>
  </fieldset>
  <fieldset><legend>Guessing limits</legend>
  ${number('lock-failures', 'accountFailures', 'Failures in a row before an account is held back (5 to 100)', policy.lockout.accountFailures, 5, 100)}
  ${number('lock-minutes', 'blockMinutes', 'How long it is held back (minutes)', policy.lockout.blockMinutes, 1, 1440)}
  </fieldset>
  ${number('remember', 'rememberedDeviceDays', 'Days a browser may skip the second factor after one (0: never)', policy.rememberedDeviceDays, 0, 90)}
  <fieldset><legend>How long records are kept</legend>
  ${number('keep-signins', 'signinEventDays', `Sign-in log (days, ${RETENTION_BOUNDS.signinEventDays.min} to ${RETENTION_BOUNDS.signinEventDays.max})`, policy.retention.signinEventDays, RETENTION_BOUNDS.signinEventDays.min, RETENTION_BOUNDS.signinEventDays.max)}
  ${number('keep-audit', 'auditDays', `Audit log (days, ${RETENTION_BOUNDS.auditDays.min} to ${RETENTION_BOUNDS.auditDays.max})`, policy.retention.auditDays, RETENTION_BOUNDS.auditDays.min, RETENTION_BOUNDS.auditDays.max)}
  </fieldset>
  <fieldset><legend>When none of a user's methods can be used (every channel they use is down)</legend>
  <label class="check"><input type="radio" name="failMode" value="closed"${checked(policy.failMode === 'closed')}> Refuse the sign-in and tell them to ask for a Temporary Access Pass</label>
  <label class="check"><input type="radio" name="failMode" value="tap-only"${checked(policy.failMode === 'tap-only')}> Go on to the second step and accept only a Temporary Access Pass</label>
  </fieldset>
  <button type="submit">Save policy</button>
</form>`,
        status,
      );
    };

    app.get('/t/:tenant/admin/policy', view(PageParams, Type.Object({})), async (request, reply) => {
      const p = await adminOr(request, reply);
      return p ? policyPage(reply, p, p.tenant.policy) : reply;
    });

    const PolicyForm = Type.Object({
      _csrf: Field(),
      mfaRequired: Field(5),
      allowedMethods: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Array(Type.String({ maxLength: 40 }), { maxItems: 20 })])),
      tapMinMinutes: Field(10),
      tapMaxMinutes: Field(10),
      tapDefaultMinutes: Field(10),
      tapOneTimeDefault: Field(5),
      accountFailures: Field(10),
      blockMinutes: Field(10),
      rememberedDeviceDays: Field(10),
      failMode: Field(20),
      signinEventDays: Field(10),
      auditDays: Field(10),
    });

    app.post('/t/:tenant/admin/policy', form(PageParams, PolicyForm), async (request, reply) => {
      const p = await adminOr(request, reply, { change: true });
      if (!p) return reply;
      const b = request.body;
      // Numbers as typed: a blank or a word reaches the validator as it is and is named there.
      const num = (v: string | undefined) => (v === undefined || v.trim() === '' || Number.isNaN(Number(v)) ? v : Number(v));
      const input = {
        mfaRequired: b.mfaRequired === 'on',
        allowedMethods: b.allowedMethods === undefined ? [] : Array.isArray(b.allowedMethods) ? b.allowedMethods : [b.allowedMethods],
        tap: { minMinutes: num(b.tapMinMinutes), maxMinutes: num(b.tapMaxMinutes), defaultMinutes: num(b.tapDefaultMinutes), oneTimeDefault: b.tapOneTimeDefault === 'on' },
        lockout: { accountFailures: num(b.accountFailures), blockMinutes: num(b.blockMinutes) },
        rememberedDeviceDays: num(b.rememberedDeviceDays),
        failMode: b.failMode ?? p.tenant.policy.failMode,
        retention: { signinEventDays: num(b.signinEventDays), auditDays: num(b.auditDays) },
      };
      try {
        const policy = await admin.setPolicy(p.tenant, actor(p), input);
        return await policyPage(reply, p, policy, { kind: 'info', text: 'Policy saved. Every node applies it within a few seconds.' });
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'invalid-policy') throw err;
        const problems = Array.isArray(err.extra.problems) ? (err.extra.problems as string[]) : [problemCatalog['invalid-policy'].title];
        // The form keeps what was typed, but for the fields that were wrong.
        return policyPage(reply, p, checkPolicy(input, p.tenant.policy).policy, { kind: 'error', text: 'The policy was not saved. Correct these and save again:' }, problems, 400);
      }
    });
  };
}
