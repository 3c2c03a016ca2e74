/**
 * A browser without a browser: a cookie jar, page fetches and form posts with
 * the page's CSRF field, for tests of the server-rendered pages that do not
 * need Chromium. It sends what a same-origin browser sends (Origin and
 * Sec-Fetch-Site) unless told otherwise.
 */
export interface PageResponse {
  status: number;
  location: string | null;
  text: string;
  headers: Headers;
}

export class PageClient {
  readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /max-age=0\b/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async get(path: string): Promise<PageResponse> {
    const res = await fetch(this.base + path, { redirect: 'manual', headers: { cookie: this.cookieHeader(), 'sec-fetch-site': 'same-origin' } });
    this.keep(res);
    return { status: res.status, location: res.headers.get('location'), text: await res.text(), headers: res.headers };
  }

  /** Posts a form as the page at `from` would (its CSRF field added), from this origin unless `headers` say otherwise. */
  async post(path: string, fields: Record<string, string>, options: { from?: string; headers?: Record<string, string> } = {}): Promise<PageResponse> {
    const csrf = options.from ? csrfOf((await this.get(options.from)).text) : undefined;
    const body = new URLSearchParams({ ...(csrf ? { _csrf: csrf } : {}), ...fields });
    const res = await fetch(this.base + path, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: this.cookieHeader(),
        origin: this.base,
        'sec-fetch-site': 'same-origin',
        ...options.headers,
      },
      body,
    });
    this.keep(res);
    return { status: res.status, location: res.headers.get('location'), text: await res.text(), headers: res.headers };
  }
}

/** The first CSRF field on a page. */
export function csrfOf(page: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(page);
  if (!match) throw new Error('the page has no CSRF field');
  return match[1]!;
}

/** The value of a hidden field on a page. */
export function hiddenField(page: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(page)?.[1];
}

/** The sign-in flow a redirect to the second step's page names (its `flow` parameter); none for any other answer. */
export function flowOf(res: PageResponse): string | undefined {
  if (res.status !== 303 || !res.location) return undefined;
  const to = new URL(res.location, 'http://page.test');
  return to.pathname.endsWith('/signin/verify') ? (to.searchParams.get('flow') ?? undefined) : undefined;
}
