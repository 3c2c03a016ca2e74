/** A QR code as inline SVG, for pages that draw one from a value they hold (a pairing link kept across a post-redirect-get). */

/** The SVG of a QR code for `text`; medium error correction, as the set-up pages' codes are. */
export async function qrCodeSvg(text: string): Promise<string> {
  // Loaded on first use: most requests never draw a QR code.
  const QRCode = (await import('qrcode')).default;
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}
