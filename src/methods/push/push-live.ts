import { EventEmitter } from 'node:events';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';

// An open app refreshes its mark well within this; a mark older than this is a closed app.
export const LIVE_TTL_MS = 30_000;

const liveKey = (tenantId: string, deviceId: string) => `push:live:${tenantId}:${deviceId}`;

/**
 * The live stream to an open Steadfast Authenticator. Whether a device has
 * the app open is kept in the ephemeral store (any node may hold its stream);
 * a new request wakes this node's streams at once, and streams on other nodes
 * find it when they next look (every few seconds).
 */
export class PushLive {
  private readonly wake = new EventEmitter();

  constructor(private readonly store: EphemeralStore) {
    // One listener per open app: many phones may watch the same node.
    this.wake.setMaxListeners(0);
  }

  markOpen(tenantId: string, deviceId: string): Promise<void> {
    return this.store.set(liveKey(tenantId, deviceId), 1, LIVE_TTL_MS);
  }

  markClosed(tenantId: string, deviceId: string): Promise<void> {
    return this.store.delete(liveKey(tenantId, deviceId));
  }

  async isOpen(tenantId: string, deviceId: string): Promise<boolean> {
    return (await this.store.get(liveKey(tenantId, deviceId))) !== undefined;
  }

  /** Tells this node's streams of the user that something changed. */
  notify(tenantId: string, userId: string): void {
    this.wake.emit(`${tenantId}:${userId}`);
  }

  /** Calls `listener` on every change for the user; returns the function that stops it. */
  watch(tenantId: string, userId: string, listener: () => void): () => void {
    const name = `${tenantId}:${userId}`;
    this.wake.on(name, listener);
    return () => this.wake.off(name, listener);
  }
}
