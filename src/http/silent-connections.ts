/**
 * Connections that never sent a byte do not hold a closing node.
 *
 * Node counts a fresh connection as busy from the moment it opens (so its
 * header timeout can run), and `server.close()` waits for it until that
 * timeout, a minute by default. Browsers open such connections ahead of need
 * (preconnect), HTTP clients open one per request in a burst and keep the
 * ones a finished request did not need, and load balancers probe with bare
 * TCP. Without this, a node asked to stop could sit for a minute with
 * nothing to finish. Only connections with nothing received are ended: a
 * request that has begun arriving is left to finish or time out.
 */
import type { Socket } from 'node:net';
import type { Server } from 'node:http';

/** The part of a Fastify instance this needs (a node's app, whatever its logger type). */
interface ClosingServer {
  server: Server;
  addHook(hook: 'preClose', handler: () => Promise<void>): unknown;
}

export function endSilentConnectionsOnClose(app: ClosingServer): void {
  const open = new Set<Socket>();
  let closing = false;
  app.server.on('connection', (socket: Socket) => {
    // A connection arriving while the node closes gets nothing from it; ending it lets the client try another node.
    if (closing && socket.bytesRead === 0) {
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const socket of open) if (socket.bytesRead === 0) socket.destroy();
  });
}
