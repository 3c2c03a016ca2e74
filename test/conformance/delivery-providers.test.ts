import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Channel, OutboundMessage } from '../../src/delivery/channel.ts';
import { ProviderFailure, type DeliveryProvider } from '../../src/delivery/provider.ts';
import { createTwilioProvider } from '../../src/delivery/providers/twilio.ts';
import { createVonageProvider } from '../../src/delivery/providers/vonage.ts';
import { createWebhookProvider } from '../../src/delivery/providers/webhook.ts';
import { createSmtpProvider } from '../../src/delivery/providers/smtp.ts';
import { freePort } from '../helpers/free-port.ts';
import { startSmtpStandIn, startTwilioStandIn, startVonageStandIn, startWebhookReceiver, type StandIn } from '../helpers/vendor-standins.ts';

/**
 * The suite every HTTP delivery provider passes against a stand-in of its
 * vendor: it delivers; a 5xx, a hang or bad credentials is `unavailable`
 * (counts against the breaker); a refused destination is `rejected` (does not).
 */
interface HttpCase {
  name: string;
  channel: Channel;
  start(): Promise<StandIn>;
  provider(url: string, opts?: { wrongSecret?: boolean }): DeliveryProvider;
}

const TWILIO = { accountSid: 'AC0123', authToken: 'token-1' };
const VONAGE = { apiKey: 'key-1', apiSecret: 'secret-1' };
const HOOK = 'hook-secret-0123456789';

const cases: HttpCase[] = [
  {
    name: 'twilio sms',
    channel: 'sms',
    start: () => startTwilioStandIn(TWILIO),
    provider: (url, o) =>
      createTwilioProvider('sms', {
        name: 't',
        type: 'twilio',
        baseUrl: url,
        accountSid: TWILIO.accountSid,
        authToken: o?.wrongSecret ? 'nope' : TWILIO.authToken,
        from: '+15005550006',
      }),
  },
  {
    name: 'twilio voice',
    channel: 'voice',
    start: () => startTwilioStandIn(TWILIO),
    provider: (url, o) =>
      createTwilioProvider('voice', {
        name: 't',
        type: 'twilio',
        baseUrl: url,
        accountSid: TWILIO.accountSid,
        authToken: o?.wrongSecret ? 'nope' : TWILIO.authToken,
        from: '+15005550006',
      }),
  },
  {
    name: 'vonage sms',
    channel: 'sms',
    start: () => startVonageStandIn(VONAGE),
    provider: (url, o) =>
      createVonageProvider({
        name: 'v',
        type: 'vonage',
        baseUrl: url,
        apiKey: VONAGE.apiKey,
        apiSecret: o?.wrongSecret ? 'nope' : VONAGE.apiSecret,
        from: 'Acme',
      }),
  },
  {
    name: 'webhook',
    channel: 'sms',
    start: () => startWebhookReceiver(HOOK),
    provider: (url, o) => createWebhookProvider('sms', { name: 'w', type: 'webhook', url, secret: o?.wrongSecret ? 'another-secret-0123456' : HOOK }, Date.now),
  },
];

const message = (channel: Channel): OutboundMessage => ({ channel, to: '+447700900123', text: 'Your code is 1, 2, 3, 4, 5, 6' });

const failureOf = async (promise: Promise<void>): Promise<ProviderFailure> => {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderFailure);
    return err as ProviderFailure;
  }
  throw new Error('the send succeeded');
};

for (const c of cases) {
  describe(`delivery provider conformance: ${c.name}`, () => {
    let standIn: StandIn;
    beforeAll(async () => {
      standIn = await c.start();
    });
    afterAll(async () => standIn?.close());

    it('delivers the message to the destination', async () => {
      standIn.behave({ kind: 'ok' });
      await c.provider(standIn.url).send(message(c.channel), AbortSignal.timeout(10_000));
      expect(standIn.received.at(-1)).toMatchObject({ to: '+447700900123', text: expect.stringContaining('1, 2, 3, 4, 5, 6') });
    });

    it('reports a 5xx as unavailable, without the body', async () => {
      standIn.behave({ kind: 'fail', status: 503 });
      const failure = await failureOf(c.provider(standIn.url).send(message(c.channel), AbortSignal.timeout(10_000)));
      expect(failure).toMatchObject({ kind: 'unavailable', reason: 'HTTP 503' });
      expect(failure.message).not.toMatch(/1, 2, 3/);
    });

    it('reports a refused destination as rejected', async () => {
      standIn.behave({ kind: 'reject' });
      expect(await failureOf(c.provider(standIn.url).send(message(c.channel), AbortSignal.timeout(10_000)))).toMatchObject({ kind: 'rejected' });
    });

    it('gives up on a hung vendor when the signal aborts', async () => {
      standIn.behave({ kind: 'hang' });
      expect(await failureOf(c.provider(standIn.url).send(message(c.channel), AbortSignal.timeout(200)))).toMatchObject({
        kind: 'unavailable',
        reason: 'timed out',
      });
    });

    it('reports wrong credentials as unavailable: the account is broken, not the destination', async () => {
      standIn.behave({ kind: 'ok' });
      expect(await failureOf(c.provider(standIn.url, { wrongSecret: true }).send(message(c.channel), AbortSignal.timeout(10_000)))).toMatchObject({
        kind: 'unavailable',
      });
    });

    it('reports an unreachable vendor as unavailable', async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      expect(await failureOf(c.provider(url).send(message(c.channel), AbortSignal.timeout(10_000)))).toMatchObject({
        kind: 'unavailable',
        reason: 'ECONNREFUSED',
      });
    });
  });
}

describe('delivery provider conformance: smtp', () => {
  const smtp = (port: number) =>
    createSmtpProvider({ name: 'm', type: 'smtp', host: '127.0.0.1', port, secure: false, requireTls: false, from: 'Acme <no-reply@example.test>' }, 2000);

  it('delivers an email with subject, text and HTML to a real SMTP server', async () => {
    const server = await startSmtpStandIn();
    const provider = smtp(server.port);
    try {
      await provider.send(
        { channel: 'email', to: 'dora@example.test', subject: 'Your code', text: 'Your code is 123456.', html: '<p>123456</p>' },
        AbortSignal.timeout(10_000),
      );
      expect(server.received.at(-1)).toMatchObject({ to: 'dora@example.test', text: expect.stringContaining('Your code is 123456.') });
      expect(server.received.at(-1)!.text).toMatch(/Subject: Your code/);
    } finally {
      await provider.close?.();
      await server.close();
    }
  });

  it('reports a recipient the server refuses, for good or for now, as rejected: whoever types the address chooses the answer', async () => {
    const server = await startSmtpStandIn();
    server.refusedDomains.set('gone.test', 550).set('nxdomain.test', 450).set('greylist.test', 451).set('closing.test', 421);
    const provider = smtp(server.port);
    const to = (address: string) => failureOf(provider.send({ channel: 'email', to: address, subject: 's', text: 't' }, AbortSignal.timeout(10_000)));
    try {
      expect(await to('dora@gone.test')).toMatchObject({ kind: 'rejected', reason: 'SMTP 550' });
      expect(await to('dora@nxdomain.test')).toMatchObject({ kind: 'rejected', reason: 'SMTP 450' });
      expect(await to('dora@greylist.test')).toMatchObject({ kind: 'rejected', reason: 'SMTP 451' });
      // 421 is the server closing the channel: the server's problem.
      expect(await to('dora@closing.test')).toMatchObject({ kind: 'unavailable' });
      // A message refused for good after its data (round 30: a relay that will not send to a domain) is that message's.
      server.refusedAfterData.set('nosend.test', 554).set('busy.test', 451);
      expect(await to('dora@nosend.test')).toMatchObject({ kind: 'rejected', reason: 'SMTP 554' });
      // For now, after the data, is the server's (its disk, its queue).
      expect(await to('dora@busy.test')).toMatchObject({ kind: 'unavailable' });
    } finally {
      await provider.close?.();
      await server.close();
    }
  });

  it('reports an unreachable server as unavailable', async () => {
    const provider = smtp(await freePort());
    try {
      expect(await failureOf(provider.send({ channel: 'email', to: 'dora@example.test', subject: 's', text: 't' }, AbortSignal.timeout(10_000)))).toMatchObject(
        { kind: 'unavailable' },
      );
    } finally {
      await provider.close?.();
    }
  });
});
