import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SMTPServer } from 'smtp-server';

/**
 * Local servers that speak the delivery vendors' APIs, for tests and the
 * delivery benchmark. Each records what it was sent and can be told to
 * behave: answer, hang (never answer), fail with a 5xx, refuse the
 * destination with a 4xx, or answer slowly.
 */
export type Behaviour = { kind: 'ok' } | { kind: 'hang' } | { kind: 'fail'; status?: number } | { kind: 'reject' } | { kind: 'slow'; ms: number };

export interface Received {
  to: string;
  /** SMS text, the words of a call, or an email's text. */
  text: string;
  at: number;
}

export interface StandIn {
  url: string;
  received: Received[];
  /** Requests that reached the server, answered or not. */
  requests: number;
  behave(b: Behaviour): void;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => Received | undefined;

async function startHttpStandIn(handle: Handler, answer: (res: ServerResponse) => void): Promise<StandIn> {
  let behaviour: Behaviour = { kind: 'ok' };
  const state: StandIn = {
    url: '',
    received: [],
    requests: 0,
    behave: (b) => {
      behaviour = b;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      state.requests++;
      const b = behaviour;
      if (b.kind === 'hang') return;
      if (b.kind === 'fail') return void res.writeHead(b.status ?? 503, { 'content-type': 'application/json' }).end('{"message":"service unavailable"}');
      if (b.kind === 'reject') return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":21211,"message":"invalid To number"}');
      const finish = () => {
        const got = handle(req, body, res);
        if (!got) return;
        state.received.push(got);
        answer(res);
      };
      if (b.kind === 'slow') setTimeout(finish, b.ms);
      else finish();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  state.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return state;
}

const unauthorised = (res: ServerResponse) => void res.writeHead(401, { 'content-type': 'application/json' }).end('{"code":20003,"message":"Authenticate"}');

/** Twilio's Messages and Calls resources (form-encoded, Basic auth with the account SID and auth token). */
export function startTwilioStandIn(credentials: { accountSid: string; authToken: string }): Promise<StandIn> {
  const expectedAuth = `Basic ${Buffer.from(`${credentials.accountSid}:${credentials.authToken}`).toString('base64')}`;
  return startHttpStandIn(
    (req, body, res) => {
      const match = /^\/2010-04-01\/Accounts\/([^/]+)\/(Messages|Calls)\.json$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match || match[1] !== credentials.accountSid) return void res.writeHead(404).end();
      if (req.headers.authorization !== expectedAuth) return unauthorised(res);
      const form = new URLSearchParams(body);
      if (match[2] === 'Messages') return { to: form.get('To') ?? '', text: form.get('Body') ?? '', at: Date.now() };
      // A call's words are in its TwiML <Say> elements.
      const says = [...(form.get('Twiml') ?? '').matchAll(/<Say>([^<]*)<\/Say>/g)].map((m) => m[1]);
      return { to: form.get('To') ?? '', text: says.join(' '), at: Date.now() };
    },
    (res) => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ sid: `SM${Date.now()}`, status: 'queued' })),
  );
}

/** Vonage's SMS API: 200 with a status per message ("0" is success). */
export function startVonageStandIn(credentials: { apiKey: string; apiSecret: string }): Promise<StandIn> {
  return startHttpStandIn(
    (req, body, res) => {
      if (req.method !== 'POST' || req.url !== '/sms/json') return void res.writeHead(404).end();
      const form = new URLSearchParams(body);
      if (form.get('api_key') !== credentials.apiKey || form.get('api_secret') !== credentials.apiSecret) {
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ 'message-count': '1', messages: [{ status: '4', 'error-text': 'Bad Credentials' }] }));
      }
      return { to: `+${form.get('to') ?? ''}`, text: form.get('text') ?? '', at: Date.now() };
    },
    (res) =>
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ 'message-count': '1', messages: [{ status: '0', 'message-id': String(Date.now()) }] })),
  );
}

/** A webhook gateway that accepts only bodies signed with the shared secret. */
export function startWebhookReceiver(secret: string): Promise<StandIn> {
  return startHttpStandIn(
    (req, body, res) => {
      const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
      const got = Buffer.from(String(req.headers['x-steadfast-signature'] ?? ''));
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) return unauthorised(res);
      const json = JSON.parse(body) as { to: string; text: string };
      return { to: json.to, text: json.text, at: Date.now() };
    },
    (res) => res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}'),
  );
}

export interface SmtpStandIn {
  port: number;
  received: Received[];
  /**
   * Messages whose text matches `watching`: the most in transfer at once, and, while `held` is set, each is
   * accepted only once it settles (a relay slow for those, to see what else gets through meanwhile).
   */
  watched: { watching: RegExp | undefined; held: Promise<void> | undefined; mostAtOnce: number };
  /** Recipient domains refused at RCPT TO, with the reply code (450: the domain is not found, 550: no such mailbox). */
  refusedDomains: Map<string, number>;
  /** Recipient domains whose messages are refused after their data, with the reply code (554: will not send there). */
  refusedAfterData: Map<string, number>;
  close(): Promise<void>;
}

/** A real SMTP server on loopback (smtp-server) that keeps what it receives. */
export async function startSmtpStandIn(): Promise<SmtpStandIn> {
  const received: Received[] = [];
  const watched: SmtpStandIn['watched'] = { watching: undefined, held: undefined, mostAtOnce: 0 };
  let watchedNow = 0;
  const refusedDomains = new Map<string, number>();
  const refusedAfterData = new Map<string, number>();
  const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const refused = refusedDomains.get(address.address.slice(address.address.lastIndexOf('@') + 1).toLowerCase());
      if (refused === undefined) return callback();
      callback(Object.assign(new Error(refused >= 500 ? 'no such mailbox' : 'recipient domain not found'), { responseCode: refused }));
    },
    onData(stream, session, callback) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (raw += chunk));
      stream.on('end', () => {
        const text = decodeQuotedPrintable(raw);
        const refusal = session.envelope.rcptTo.map((r) => refusedAfterData.get(domainOf(r.address))).find((code) => code !== undefined);
        if (refusal !== undefined) return callback(Object.assign(new Error('will not send there'), { responseCode: refusal }));
        const accept = () => {
          received.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), text, at: Date.now() });
          callback();
        };
        if (!watched.watching?.test(text)) return accept();
        watched.mostAtOnce = Math.max(watched.mostAtOnce, ++watchedNow);
        void (watched.held ?? Promise.resolve()).then(() => {
          watchedNow--;
          accept();
        });
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    received,
    watched,
    refusedDomains,
    refusedAfterData,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Quoted-printable undone: the escaped bytes put back, then read as the UTF-8 they are (the rest of a message is ASCII). */
function decodeQuotedPrintable(raw: string): string {
  const bytes = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** The code in a message: the origin-bound `#code` of an SMS, else what follows "code is" (spoken digits joined). */
export function codeIn(message: Received | undefined): string {
  if (!message) throw new Error('no message was received');
  const bound = /#([0-9]{6,8})\s*$/.exec(message.text);
  if (bound) return bound[1]!;
  const said = /code is ((?:[0-9](?:, )?){6,8})/.exec(message.text);
  if (!said) throw new Error('no code in the message');
  return said[1]!.replace(/\D/g, '');
}
