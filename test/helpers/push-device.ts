import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { decisionMessage, readMessage, subscriptionMessage } from '../../src/methods/push/device-signature.ts';
import { api } from './test-server.ts';

/**
 * A Steadfast Authenticator in Node: a P-256 key like the app's WebCrypto key,
 * signing what the app signs (IEEE P1363 signatures, as WebCrypto makes them).
 */
export class PushDevice {
  readonly privateKey: KeyObject;
  readonly publicJwk: Record<string, unknown>;
  deviceId = '';

  constructor(
    private readonly base: string,
    private readonly tenant: string,
    private readonly tenantId: string,
  ) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    this.publicJwk = pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  }

  sign(message: string): string {
    return sign('sha256', Buffer.from(message), { key: this.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  }

  async pair(pairingUrl: string, subscription?: unknown) {
    const token = new URL(pairingUrl).hash.replace(/^#pair=/, '');
    const answer = await api(this.base, 'POST', `/api/v1/t/${this.tenant}/authenticator/pair`, {
      token,
      publicKey: this.publicJwk,
      name: 'Test phone',
      ...(subscription ? { subscription } : {}),
    });
    if (answer.status === 200) this.deviceId = answer.body.deviceId;
    return answer;
  }

  readQuery(time = Date.now()): string {
    return `device=${this.deviceId}&time=${time}&sig=${this.sign(readMessage(this.deviceId, time))}`;
  }

  requests(time = Date.now()) {
    return api(this.base, 'GET', `/api/v1/t/${this.tenant}/authenticator/requests?${this.readQuery(time)}`);
  }

  /** The signed answer, without sending it (to replay or tamper with). */
  answer(request: { id: string; binding: string }, decision: 'approve' | 'deny', number: string, time = Date.now(), notMe = false) {
    const signature = this.sign(
      decisionMessage({ decision, challengeId: request.id, binding: request.binding, number: decision === 'approve' ? number : '', time }),
    );
    return { device: this.deviceId, decision, number, time, signature, ...(notMe ? { notMe } : {}) };
  }

  send(requestId: string, body: unknown) {
    return api(this.base, 'POST', `/api/v1/t/${this.tenant}/authenticator/requests/${requestId}`, body);
  }

  subscribe(subscription: { endpoint: string; keys: { p256dh: string; auth: string } } | null, time = Date.now()) {
    const signature = this.sign(subscriptionMessage(this.deviceId, subscription, time));
    return api(this.base, 'PUT', `/api/v1/t/${this.tenant}/authenticator/subscription`, { device: this.deviceId, subscription, time, signature });
  }
}
