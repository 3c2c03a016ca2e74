// Errors that mean a store or network peer is unreachable: not the client's
// fault and not a bug, but a 503 the client may retry (and, for the database,
// the signal to sign in from the local fallback).
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'SQLITE_BUSY',
  'SQLITE_IOERR',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08006',
]);
const UNAVAILABLE_MESSAGES =
  /Connection is closed|Stream isn't writeable|Command timed out|Connection terminated|timeout exceeded when trying to connect|enableOfflineQueue|Client has encountered a connection error|connect ECONNREFUSED/i;

export function isUnavailable(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || error.name === 'MaxRetriesPerRequestError' || UNAVAILABLE_MESSAGES.test(error.message);
}
