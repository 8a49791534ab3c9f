/**
 * Idle sockets against the recommended server settings: live ingest needs `requestTimeout: 0`, and with
 * that alone Node closes nothing that never completes its headers (its `headersTimeout` then defaults
 * to `min(60 s, requestTimeout)` = 0). With `headersTimeout`, `keepAliveTimeout` and `maxConnections`
 * set, sockets that send nothing, slow headers and idle keep-alive connections are closed while an
 * ingest POST that sends a fragment every 1.5 s stays open. The middleware warns once about a server
 * set up without them. Timeouts are scaled down (500 ms, checked every 100 ms) to keep the test short.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import { isml } from '../helpers/server';
import { RawPost, fixture, get, parseManifest, sleep, until } from '../helpers/raw-ingest';

/** The README's recommended settings, scaled down for a test. */
const TUNED: http.ServerOptions = { requestTimeout: 0, headersTimeout: 500, keepAliveTimeout: 500, connectionsCheckingInterval: 100 };

interface Host {
  base: string;
  port: number;
  server: http.Server;
  handler: LiveSmoothHandler;
  close(): Promise<void>;
}

async function host(serverOptions: http.ServerOptions, maxConnections?: number, timeout?: number): Promise<Host> {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-srv-'));
  for (const name of ['ch', 'other']) writeFileSync(path.join(root, `${name}.isml`), isml());
  const handler = liveSmooth(root);
  const server = http.createServer(serverOptions, handler);
  if (maxConnections !== undefined) server.maxConnections = maxConnections;
  if (timeout !== undefined) server.timeout = timeout;
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    server,
    handler,
    async close() {
      handler.origin.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A raw client socket that reads everything (so it sees the server's FIN) and records when it closed. */
interface Client {
  socket: net.Socket;
  received: () => string;
  /** Resolves with the ms from opening to close. */
  closed: Promise<number>;
  isClosed: () => boolean;
}

function connect(port: number, first?: string): Client {
  const started = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  let isClosed = false;
  socket.on('data', (d: Buffer) => parts.push(d));
  socket.on('error', () => undefined);
  if (first !== undefined) socket.write(first);
  const closed = new Promise<number>((ok) => socket.once('close', () => {
    isClosed = true;
    ok(Date.now() - started);
  }));
  return { socket, received: () => Buffer.concat(parts).toString('latin1'), closed, isClosed: () => isClosed };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describe('Node 20 semantics the recommendation rests on', () => {
  it('requestTimeout: 0 alone turns the headers timeout off too; an explicit headersTimeout is kept', () => {
    expect(http.createServer({ requestTimeout: 0 }).headersTimeout).toBe(0);
    expect(http.createServer({}).headersTimeout).toBe(60_000);
    const tuned = http.createServer({ requestTimeout: 0, headersTimeout: 10_000 });
    expect([tuned.requestTimeout, tuned.headersTimeout, tuned.keepAliveTimeout]).toEqual([0, 10_000, 5000]);
  });
});

describe('the one-time warning about a server set up without socket bounds', () => {
  let emitWarning: jest.SpyInstance;
  const ours = (): unknown[][] => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'LIVE_SMOOTH_SERVER_SETTINGS');
  beforeAll(() => {
    emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterAll(() => emitWarning.mockRestore());

  it('a server with the recommended settings gets no warning', async () => {
    const h = await host({ requestTimeout: 0, headersTimeout: 10_000 }, 1000);
    try {
      expect((await get(`${h.base}/ch.isml/Manifest`)).status).toBe(404);
      expect(ours()).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('a server with only requestTimeout: 0 is warned about once, naming what is missing and the fix', async () => {
    const a = await host({ requestTimeout: 0 });
    const b = await host({ requestTimeout: 0, keepAliveTimeout: 0 });
    try {
      expect((await get(`${a.base}/ch.isml/Manifest`)).status).toBe(404);
      expect((await get(`${a.base}/other.isml/Manifest`)).status).toBe(404);
      expect((await get(`${b.base}/ch.isml/Manifest`)).status).toBe(404);
      const calls = ours();
      expect(calls).toHaveLength(1);
      const message = String(calls[0]![0]);
      expect(message).toMatch(/headersTimeout is 0/);
      expect(message).toMatch(/maxConnections is not set/);
      expect(message).not.toMatch(/requestTimeout is/);
      expect(message).toMatch(/headersTimeout: 10_000/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('URLs the middleware passes on do not trigger the check', async () => {
    const h = await host({ requestTimeout: 0 });
    try {
      const before = ours().length;
      expect((await get(`${h.base}/missing.isml/Manifest`)).status).toBe(404);
      expect(ours()).toHaveLength(before);
    } finally {
      await h.close();
    }
  });
});

describe('idle sockets with the recommended settings while a slow live ingest goes on', () => {
  let h: Host;
  beforeAll(async () => {
    h = await host(TUNED, 64);
  });
  afterAll(() => h.close());

  it('silent sockets, slow headers and idle keep-alive are closed; an ingest POST sending every 1.5 s stays open', async () => {
    const f = fixture();
    const post = new RawPost(`${h.base}/ch.isml/Streams(all)`);
    await post.write(f.header);
    const pushing = (async () => {
      for (let i = 0; i < f.fragments.length; i += 3) {
        await post.write(Buffer.concat(f.fragments.slice(i, i + 3)));
        if (i + 3 < f.fragments.length) await sleep(1500);
      }
    })();

    const silent = Array.from({ length: 20 }, () => connect(h.port));
    const slow = Array.from({ length: 5 }, () => connect(h.port, 'GET /other.isml/Manifest HTTP/1.1\r\n'));
    const headerLine = 'Host: 127.0.0.1\r\nX-Slow: ' + 'x'.repeat(40);
    let sent = 0;
    const drip = setInterval(() => {
      // One byte every 50 ms, never the end of the headers.
      if (sent < headerLine.length) for (const c of slow) c.socket.write(headerLine[sent]!);
      sent++;
    }, 50);
    const keepAlive = connect(h.port, 'GET /other.isml/Manifest HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    try {
      const silentClosed = await within(Promise.all(silent.map((c) => c.closed)), 3000, 'silent sockets closed');
      const slowClosed = await within(Promise.all(slow.map((c) => c.closed)), 3000, 'slow headers closed');
      // headersTimeout 500 ms, checked every 100 ms.
      for (const ms of [...silentClosed, ...slowClosed]) expect(ms).toBeLessThan(1500);
      for (const c of slow) expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
      // After its response, keepAliveTimeout (+ Node's 1 s grace) closes the idle connection.
      await within(keepAlive.closed, 4000, 'idle keep-alive closed');
      expect(keepAlive.received()).toMatch(/^HTTP\/1\.1 404 /);
      expect(post.isClosed).toBe(false);
      expect(post.responded).toBe(false);

      await pushing;
      await post.write(f.mfra);
      const reply = await post.end();
      expect(reply.status).toBe(200);
      const m = parseManifest((await get(`${h.base}/ch.isml/Manifest`)).text);
      expect(m.streams.find((s) => s.type === 'video')!.fragments).toHaveLength(4);
    } finally {
      clearInterval(drip);
      for (const c of [...silent, ...slow, keepAlive]) c.socket.destroy();
    }
  }, 20_000);
});

describe('maxConnections bounds the sockets; the headers timeout frees them for encoders', () => {
  it('connections over the limit are dropped at once; once the silent ones are closed an encoder gets in', async () => {
    const h = await host(TUNED, 20);
    try {
      const silent = Array.from({ length: 20 }, () => connect(h.port));
      const connections = (): Promise<number> => new Promise((ok, fail) => h.server.getConnections((err, n) => (err ? fail(err) : ok(n))));
      await until(async () => (await connections()) === 20, 2000, 10);
      const extra = connect(h.port, 'GET /ch.isml/Manifest HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const dropped = await within(extra.closed, 1000, 'over-limit connection dropped');
      expect(dropped).toBeLessThan(400); // well before any timeout
      expect(extra.received()).toBe('');
      await within(Promise.all(silent.map((c) => c.closed)), 3000, 'silent sockets closed');
      const f = fixture();
      const post = new RawPost(`${h.base}/ch.isml/Streams(all)`);
      await post.writeAll(Buffer.concat([f.header, ...f.fragments, f.mfra]));
      expect((await post.end()).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});

describe('ingest turns off the socket timeout for itself only', () => {
  it('after an ingest POST, the next request on the keep-alive connection has the server timeout again', async () => {
    // keepAliveTimeout 0: only the socket idle timeout (server.timeout) can close the idle connection afterwards.
    const h = await host({ requestTimeout: 0, headersTimeout: 500, keepAliveTimeout: 0, connectionsCheckingInterval: 100 }, 64, 500);
    try {
      const f = fixture();
      const body = Buffer.concat([f.header, ...f.fragments]);
      const c = connect(h.port, `POST /ch.isml/Streams(all) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`);
      c.socket.write(body);
      const started = Date.now();
      await within(
        (async () => {
          while (!/HTTP\/1\.1 200 [^]*\r\n\r\n/.test(c.received())) await sleep(20);
        })(),
        3000,
        'ingest answer',
      );
      c.socket.write('GET /ch.isml/Manifest HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await within(c.closed, 3000, 'idle connection closed by server.timeout');
      expect(c.received()).toMatch(/HTTP\/1\.1 200 [^]*HTTP\/1\.1 200 [^]*SmoothStreamingMedia/);
      expect(Date.now() - started).toBeLessThan(2500);
    } finally {
      await h.close();
    }
  });
});
