import { createRequire } from 'node:module';
import { failureForNetworkError, failureForStatus } from '../provider.ts';

export interface VendorResponse {
  status: number;
  json: unknown;
}

let undici: typeof import('undici') | undefined;

/**
 * Loads undici, the HTTP client of the vendor providers. Called when such a
 * provider is created (see delivery.ts), so commands and nodes without one never
 * load it, and a node with one does not load it inside its first send, where it
 * would count against the provider's timeout.
 */
export function loadVendorHttp(): typeof import('undici') {
  return (undici ??= createRequire(import.meta.url)('undici') as typeof import('undici'));
}

/**
 * One HTTP call to a vendor API. Failures are described by status or error
 * code only; the bodies are never put into an error, since the request body
 * holds the code and some vendors echo it back.
 */
export async function callVendor(
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal },
): Promise<VendorResponse> {
  const { request } = loadVendorHttp();
  let response;
  try {
    response = await request(url, { method: init.method, headers: init.headers, body: init.body, signal: init.signal });
  } catch (err) {
    throw failureForNetworkError(err);
  }
  let json: unknown;
  try {
    const text = await response.body.text();
    json = text ? JSON.parse(text) : undefined;
  } catch (err) {
    // A vendor that hangs after its headers is as unavailable as one that never answers.
    if ((err as Error)?.name === 'AbortError') throw failureForNetworkError(err);
    json = undefined;
  }
  if (response.statusCode < 200 || response.statusCode > 299) throw failureForStatus(response.statusCode);
  return { status: response.statusCode, json };
}

export const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

export const basicAuth = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
