/** QR codes as inline SVG: the set-up of an authenticator app, a push device's pairing link. */

type QrCodeModule = typeof import('qrcode');

// Loaded on first use: the command line never draws a QR code, and it starts faster without it.
let qrCode: Promise<QrCodeModule> | undefined;
const loadQrCode = () => (qrCode ??= import('qrcode').then((m) => m.default as unknown as QrCodeModule));

/** The SVG of a QR code for `text`; medium error correction, which phone cameras read well off a screen. */
export async function qrCodeSvg(text: string): Promise<string> {
  // Stryker disable next-line StringLiteral: equivalent (the library reads a level it does not know as its default, 'M')
  return (await loadQrCode()).toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/**
 * Loads the library and draws one code, for a node about to take traffic: the
 * first code a process draws costs about 50 ms of the event loop (the module's
 * loading and compilation), which a new user's set-up would otherwise spend in
 * the middle of everyone's sign-ins. Gives the code it drew.
 */
export async function warmQrCodes(): Promise<string> {
  return qrCodeSvg('otpauth://totp/Steadfast:warm-up?secret=JBSWY3DPEHPK3PXP&issuer=Steadfast');
}
