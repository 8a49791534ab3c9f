/**
 * The edge middleware's HTTP behaviour: mounted in Express (the mount path stripped) or as a plain
 * node:http listener; GET and HEAD only (405 with Allow); client If-None-Match answered 304 from the
 * cache; the upstream headers it forwards and drops; X-Cache; bad upstream data and failing listeners
 * answered or contained, never a crash.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import express from 'express';
import request from 'supertest';
import liveSmoothDefault, { edge, EdgeHandler, liveSmooth } from '../../../lib';
import { FakeUpstream, answer, fakeUpstream, listen, serve, sleep } from '../../helpers/fake-upstream';

const MANIFEST_HEADERS = {
  'Content-Type': 'application/vnd.ms-sstr+xml; charset=utf-8',
  'Cache-Control': 'public, max-age=60',
  ETag: '"m1"',
  'Last-Modified': 'Thu, 01 Jan 2026 00:00:00 GMT',
  'Access-Control-Allow-Origin': '*',
};

/** A GET with exactly these request headers. */
function rawGet(url: string, headers: Record<string, string> = {}, path?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((ok, ko) => {
    const req = http.request(url, { headers, ...(path ? { path } : {}) }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', ko);
    req.end();
  });
}

describe('edge: HTTP', () => {
  let up: FakeUpstream;
  let handler: EdgeHandler | undefined;

  beforeEach(async () => {
    up = await fakeUpstream();
    up.route('/live/ch1.isml/Manifest', answer('<SmoothStreamingMedia/>', MANIFEST_HEADERS));
  });

  afterEach(async () => {
    handler?.close();
    handler = undefined;
    await up.close();
  });

  it('is liveSmooth.edge, on the named and the default export', () => {
    expect(liveSmooth.edge).toBe(edge);
    expect(liveSmoothDefault.edge).toBe(edge);
  });

  it('mounted in Express: the mount path is stripped and the rest appended to the upstream URL', async () => {
    handler = edge({ upstream: `${up.url}/live` });
    const app = express();
    app.use('/cdn/live', handler);
    app.get('/other', (_req, res) => void res.send('host route'));
    const r = await request(app).get('/cdn/live/ch1.isml/Manifest').expect(200);
    expect(r.text).toBe('<SmoothStreamingMedia/>');
    expect(up.received.map((x) => x.path)).toEqual(['/live/ch1.isml/Manifest']);
    await request(app).get('/other').expect(200, 'host route');
  });

  it('as a plain node:http request listener', async () => {
    handler = edge({ upstream: up.url });
    const site = await serve(handler);
    try {
      const r = await fetch(`${site.url}/live/ch1.isml/Manifest`);
      expect([r.status, await r.text()]).toEqual([200, '<SmoothStreamingMedia/>']);
    } finally {
      await site.close();
    }
  });

  it('forwards the useful headers, drops hop-by-hop ones and cookies, and says X-Cache and Age', async () => {
    up.route('/live/f', (_req, res) => {
      res.writeHead(200, {
        ...MANIFEST_HEADERS,
        'Content-Length': '4',
        Connection: 'keep-alive',
        'Keep-Alive': 'timeout=5',
        'X-Internal': 'secret',
        'Access-Control-Expose-Headers': 'Date',
        Date: 'Thu, 01 Jan 2026 00:00:05 GMT',
      });
      res.end('body');
    });
    handler = edge({ upstream: `${up.url}/live` });
    const app = express();
    app.use('/live', handler);
    const first = await request(app).get('/live/f').expect(200);
    expect(first.headers).toMatchObject({
      'content-type': 'application/vnd.ms-sstr+xml; charset=utf-8',
      'content-length': '4',
      'cache-control': 'public, max-age=60',
      etag: '"m1"',
      'last-modified': 'Thu, 01 Jan 2026 00:00:00 GMT',
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'Date',
      date: 'Thu, 01 Jan 2026 00:00:05 GMT',
      'x-cache': 'MISS',
      age: '0',
    });
    expect(first.headers['x-internal']).toBeUndefined();
    expect(first.headers['keep-alive']).toBeUndefined();
    const second = await request(app).get('/live/f').expect(200);
    expect(second.headers['x-cache']).toBe('HIT');
    // An upstream cookie is neither forwarded nor the reason for a shared answer.
    up.route('/live/c', answer('c', { 'Set-Cookie': 'upstream=1', 'Cache-Control': 'max-age=60' }));
    const cookie = await request(app).get('/live/c').expect(200);
    expect(cookie.headers['set-cookie']).toBeUndefined();
  });

  it('HEAD: the headers of a GET, no body, filled from (and into) the cache', async () => {
    handler = edge({ upstream: `${up.url}/live` });
    const site = await serve(handler);
    try {
      const head = await fetch(`${site.url}/ch1.isml/Manifest`, { method: 'HEAD' });
      expect([head.status, head.headers.get('content-length'), head.headers.get('x-cache'), await head.text()]).toEqual([200, '23', 'MISS', '']);
      const get = await fetch(`${site.url}/ch1.isml/Manifest`);
      expect([get.headers.get('x-cache'), await get.text()]).toEqual(['HIT', '<SmoothStreamingMedia/>']);
      expect(up.received.map((r) => r.method)).toEqual(['GET']);
    } finally {
      await site.close();
    }
  });

  it("a client's If-None-Match is answered 304 from the cache (on a miss and on a hit)", async () => {
    handler = edge({ upstream: `${up.url}/live` });
    const site = await serve(handler);
    try {
      // node:http, not fetch: fetch adds `Cache-Control: no-cache` to a conditional request, which
      // asks the edge to revalidate (tested in lifetimes.test.ts).
      for (const expected of ['MISS', 'HIT']) {
        const r = await rawGet(`${site.url}/ch1.isml/Manifest`, { 'If-None-Match': 'W/"other", "m1"' });
        expect([r.status, r.headers.etag, r.headers['x-cache'], r.headers['cache-control'], r.body]).toEqual([304, '"m1"', expected, 'public, max-age=60', '']);
      }
      expect((await rawGet(`${site.url}/ch1.isml/Manifest`, { 'If-None-Match': '*' })).status).toBe(304);
      const other = await rawGet(`${site.url}/ch1.isml/Manifest`, { 'If-None-Match': '"m0"' });
      expect([other.status, other.headers['x-cache'], other.body]).toEqual([200, 'HIT', '<SmoothStreamingMedia/>']);
      // The client's validators never go upstream: the edge revalidates with its own.
      expect(up.received.map((r) => r.ifNoneMatch)).toEqual([undefined]);
    } finally {
      await site.close();
    }
  });

  it.each(['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])('%s: 405 with Allow, nothing sent upstream', async (method) => {
    handler = edge({ upstream: `${up.url}/live` });
    const site = await serve(handler);
    try {
      const r = await fetch(`${site.url}/ch1.isml/Streams(ch1)`, { method, body: method === 'POST' || method === 'PUT' ? 'x' : undefined });
      expect([r.status, r.headers.get('allow'), await r.text()]).toEqual([405, 'GET, HEAD', 'method not allowed: the edge serves GET and HEAD\n']);
      expect(up.count()).toBe(0);
    } finally {
      await site.close();
    }
  });

  it('keeps paths below the upstream prefix (dot segments, encoded ones, a // path)', async () => {
    up.route('/live/x', answer('x', { 'Cache-Control': 'max-age=60' }));
    handler = edge({ upstream: `${up.url}/live` });
    const site = await serve(handler);
    try {
      for (const path of ['/../x', '/%2e%2e/x', '/a/../x', '/./x']) {
        // Raw request: fetch would resolve the dots itself.
        const r = await rawGet(site.url, {}, path);
        expect([path, r.status, r.body]).toEqual([path, 200, 'x']);
      }
      await fetch(`${site.url}//elsewhere.example/x`).then((r) => r.text());
      expect(up.received.map((r) => r.path)).toEqual(['/live/x', '/live//elsewhere.example/x']);
    } finally {
      await site.close();
    }
  });

  describe('bad upstream data: a clear 502, never a crash', () => {
    const raw = async (reply: (socket: net.Socket) => void): Promise<{ url: string; close(): Promise<void> }> => {
      const server = net.createServer((socket) => socket.once('data', () => reply(socket)));
      const url = await listen(server as unknown as http.Server);
      return { url, close: () => new Promise<void>((ok) => server.close(() => ok())) };
    };

    it.each([
      ['garbage instead of HTTP', (s: net.Socket) => s.end('this is not HTTP\r\n\r\n')],
      ['a malformed Content-Length', (s: net.Socket) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nhello')],
      ['a connection closed before any answer', (s: net.Socket) => s.destroy()],
      ['a body shorter than its Content-Length', (s: net.Socket) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nCache-Control: max-age=60\r\n\r\nshort')],
    ])('%s', async (_what, reply) => {
      const bad = await raw(reply);
      handler = edge({ upstream: bad.url });
      const site = await serve(handler);
      try {
        const r = await fetch(`${site.url}/x`);
        const text = await r.text();
        expect(r.status).toBe(502);
        expect(text).toMatch(/^edge: upstream 1 of 1 (failed|broke off its body|sent a malformed Content-Length).*\n$/);
        expect(r.headers.get('cache-control')).toBe('no-store');
        expect(handler.stats().entries).toBe(0);
      } finally {
        await site.close();
        await bad.close();
      }
    });

    it('a 304 to an unconditional request', async () => {
      up.route('/live/x', (_req, res) => {
        res.writeHead(304);
        res.end();
      });
      handler = edge({ upstream: `${up.url}/live` });
      const site = await serve(handler);
      try {
        const r = await fetch(`${site.url}/x`);
        expect([r.status, await r.text()]).toEqual([502, 'edge: upstream 1 of 1 answered 304 to an unconditional request\n']);
      } finally {
        await site.close();
      }
    });
  });

  it('listeners that throw or reject are counted and the requests go on', async () => {
    const dead = net.createServer();
    const deadUrl = await listen(dead as unknown as http.Server);
    await new Promise<void>((ok) => dead.close(() => ok()));
    handler = edge({ upstream: [deadUrl, `${up.url}/live`] });
    handler.on('upstreamFailure', () => {
      throw new Error('listener bug');
    });
    handler.on('failover', () => Promise.reject(new Error('async listener bug')));
    const site = await serve(handler);
    try {
      const r = await fetch(`${site.url}/ch1.isml/Manifest`);
      expect([r.status, await r.text()]).toEqual([200, '<SmoothStreamingMedia/>']);
      await sleep(10);
      expect(handler.stats().listenerFailures).toBe(2);
    } finally {
      await site.close();
    }
  });

  it('a client that goes away while its request waits upstream does not disturb the others', async () => {
    let release: () => void = () => undefined;
    up.route('/live/held', (req, res) => {
      release = () => answer('late', { 'Cache-Control': 'max-age=60' })(req, res);
    });
    handler = edge({ upstream: `${up.url}/live` });
    const site = await serve(handler);
    try {
      const gone = new AbortController();
      const first = fetch(`${site.url}/held`, { signal: gone.signal }).catch(() => 'aborted');
      const second = fetch(`${site.url}/held`).then((r) => r.text());
      await sleep(100);
      gone.abort();
      expect(await first).toBe('aborted');
      release();
      expect(await second).toBe('late');
      expect(up.count('/live/held')).toBe(1);
    } finally {
      await site.close();
    }
  });

  it('after close(): 503 with a reason', async () => {
    handler = edge({ upstream: `${up.url}/live` });
    const site = await serve(handler);
    try {
      handler.close();
      const r = await fetch(`${site.url}/ch1.isml/Manifest`);
      expect([r.status, r.headers.get('retry-after'), await r.text()]).toEqual([503, '1', 'edge: the edge is closed\n']);
    } finally {
      await site.close();
    }
  });
});
