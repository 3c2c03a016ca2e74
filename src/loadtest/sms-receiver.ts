import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';

/**
 * A stand-in SMS gateway for `steadfast loadtest`: the deployment's `webhook`
 * SMS provider posts to it (signed with the shared secret), and journeys
 * waiting for a code to a phone number get it from here.
 */
export class SmsReceiver {
  private readonly waiting = new Map<string, (code: string) => void>();
  private readonly early = new Map<string, string>();
  private server: Server | undefined;
  received = 0;

  constructor(private readonly secret: string) {}

  async listen(port: number, host = '0.0.0.0'): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const expected = Buffer.from(`sha256=${createHmac('sha256', this.secret).update(body).digest('hex')}`);
        const got = Buffer.from(String(req.headers['x-steadfast-signature'] ?? ''));
        if (got.length !== expected.length || !timingSafeEqual(got, expected)) return void res.writeHead(401).end();
        try {
          const { to, text } = JSON.parse(body.toString('utf8')) as { to: string; text: string };
          const code = /#([0-9]{6,8})\s*$/.exec(text)?.[1];
          if (code) this.deliver(to, code);
        } catch {
          return void res.writeHead(400).end();
        }
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, resolve);
    });
  }

  /** The next code sent to `phone`, or a rejection after `timeoutMs`. */
  codeFor(phone: string, timeoutMs = 15_000): Promise<string> {
    const early = this.early.get(phone);
    if (early) {
      this.early.delete(phone);
      return Promise.resolve(early);
    }
    const waiting = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(phone);
        reject(new Error('no SMS arrived'));
      }, timeoutMs);
      this.waiting.set(phone, (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    // Asked for before the request that sends it: if that request fails, nobody awaits this.
    waiting.catch(() => {});
    return waiting;
  }

  private deliver(phone: string, code: string): void {
    this.received++;
    const waiter = this.waiting.get(phone);
    if (waiter) {
      this.waiting.delete(phone);
      waiter(code);
    } else {
      this.early.set(phone, code);
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
