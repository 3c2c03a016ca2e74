import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer } from '../helpers/test-server.ts';

/**
 * A node asked to stop must not wait on clients that opened a connection
 * and never sent a request (a browser's preconnect, a burst's spare
 * connection, a load balancer's bare TCP probe): Node counts those as busy
 * until their header timeout, a minute. A request already under way still
 * gets its answer.
 */
describe('closing a node', () => {
  const backends: Backend[] = [];
  afterAll(async () => {
    for (const backend of backends) await backend.cleanup();
  });

  it('ends connections that never sent a byte, and still answers the request under way', async () => {
    const backend = await sqliteMemory.create();
    backends.push(backend);
    const server = await startTestServer(backend);
    const { port } = new URL(server.url);
    const accepted: Socket[] = [];
    server.app.server.on('connection', (socket: Socket) => accepted.push(socket));
    const silent: Socket = connect(Number(port), '127.0.0.1');
    // Ended by the node: a reset, which is what a client that sent nothing should see.
    silent.on('error', () => undefined);
    const silentClosed = once(silent, 'close');
    await once(silent, 'connect');

    // A request whose headers are in but whose body is still coming: it is under way and must be answered.
    const slow: Socket = connect(Number(port), '127.0.0.1');
    await once(slow, 'connect');
    const body = JSON.stringify({ username: 'nobody', password: 'x' });
    slow.write(`POST /api/v1/t/none/signin HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
    let answer = '';
    slow.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    const slowEnded = once(slow, 'close');
    // Wait until the node has read the request's headers, then ask it to close.
    await expect.poll(() => accepted.some((socket) => socket.bytesRead > 0)).toBe(true);
    const closed = server.close();
    slow.end(body);

    await silentClosed;
    await closed;
    await slowEnded;
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
  });
});
