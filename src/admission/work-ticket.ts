import { AsyncLocalStorage } from 'node:async_hooks';
import type { SheddableClass } from './admission-class.ts';

/**
 * What admission learnt about a request, carried along its asynchronous path
 * so the hashing pool deep inside a domain call knows whose work it is doing:
 * its class and tenant (for priority and turns), when its client gives up,
 * and whether it has already been let into the pool once.
 *
 * Carried implicitly (AsyncLocalStorage) rather than through every call: the
 * hashes happen four layers down (a recovery code's check, a TAP being issued,
 * a background rehash), and a ticket forgotten at one call site would silently
 * rank that work wrongly. Explicit `WorkWindow` arguments still win.
 */
export interface WorkTicket {
  readonly cls: SheddableClass;
  readonly tenant: string;
  /** Aborted when the client's connection closes. */
  readonly signal?: AbortSignal | undefined;
  /** Epoch ms after which the client has most likely given up. */
  readonly deadline?: number | undefined;
  /** Set once the request has had a hash let in: its further hashes are part of admitted work. */
  hashed: boolean;
  /** The request's canary bucket (config/canary-slice.ts) while a configuration canary bakes. */
  readonly bucket?: number | undefined;
}

const storage = new AsyncLocalStorage<WorkTicket>();

/** Runs `fn` (and everything it starts) as the work of this ticket. */
export function runWithTicket<T>(ticket: WorkTicket, fn: () => T): T {
  return storage.run(ticket, fn);
}

/** The ticket of the request this code runs for, if any. */
export function currentTicket(): WorkTicket | undefined {
  return storage.getStore();
}
