import { createHash, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

/**
 * A software WebAuthn authenticator (ES256, attestation "none") for API tests
 * and benchmarks: it builds the same bytes a security key or passkey would.
 * Browser flows are tested with Chromium's own virtual authenticator instead.
 */
export class SoftAuthenticator {
  readonly credentialId = randomBytes(32);
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  counter = 0;

  constructor(
    private readonly origin: string,
    private readonly aaguid = Buffer.alloc(16),
    /** Whether assertions claim user verification (PIN or biometric). */
    public userVerified = true,
  ) {
    ({ privateKey: this.privateKey, publicKey: this.publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  }

  get rpId(): string {
    return new URL(this.origin).hostname;
  }

  get id(): string {
    return this.credentialId.toString('base64url');
  }

  /** The public key as COSE (what a server stores). */
  coseKey(): Buffer {
    const jwk = this.publicKey.export({ format: 'jwk' });
    const cose = new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]);
    return Buffer.from(isoCBOR.encode(cose));
  }

  /** Binds the authenticator to a user without a registration ceremony (benchmarks seed the store directly). */
  bindUser(userHandle: string): void {
    this.userHandle = userHandle;
  }

  /** A RegistrationResponseJSON for creation options. */
  register(options: { challenge: string; user: { id: string } }): Record<string, unknown> {
    const clientDataJSON = this.clientData('webauthn.create', options.challenge);
    const coseKey = this.coseKey();
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([this.authDataHead(0x41 | (this.userVerified ? 0x04 : 0)), this.aaguid, idLength, this.credentialId, coseKey]);
    const attestationObject = Buffer.from(
      isoCBOR.encode(
        new Map<string, unknown>([
          ['fmt', 'none'],
          ['attStmt', new Map()],
          ['authData', authData],
        ]) as never,
      ),
    );
    this.userHandle = options.user.id;
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: clientDataJSON.toString('base64url'), attestationObject: attestationObject.toString('base64url'), transports: ['usb'] },
      clientExtensionResults: {},
    };
  }

  private userHandle = '';

  /** An AuthenticationResponseJSON for request options; the counter moves forward unless told otherwise. */
  assert(challenge: string, options: { counter?: number; origin?: string } = {}): Record<string, unknown> {
    this.counter = options.counter ?? this.counter + 1;
    const clientDataJSON = this.clientData('webauthn.get', challenge, options.origin);
    const authData = this.authDataHead(0x01 | (this.userVerified ? 0x04 : 0));
    const signer = createSign('SHA256');
    signer.update(Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]));
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signer.sign(this.privateKey).toString('base64url'),
        userHandle: this.userHandle,
      },
      clientExtensionResults: {},
    };
  }

  private clientData(type: string, challenge: string, origin = this.origin): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  private authDataHead(flags: number): Buffer {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.counter);
    return Buffer.concat([createHash('sha256').update(this.rpId).digest(), Buffer.from([flags]), counter]);
  }
}
