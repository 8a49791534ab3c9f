/**
 * Every bound of the edge: bytes held (`maxSize`, by lru-cache's `sizeCalculation`), entries (`max`),
 * the largest body kept (`maxEntrySize`: larger ones are streamed through uncached), the largest body
 * passed on at all (`maxResponseSize`) and the upstream requests in flight (`maxUpstreamRequests`).
 */
import * as http from 'node:http';
import { edge, EdgeHandler } from '../../../lib';
import { FakeUpstream, answer, fakeUpstream, serve, sleep } from '../../helpers/fake-upstream';

const KIB = 1024;

describe('edge: bounds', () => {
  let up: FakeUpstream;
  let handler: EdgeHandler;
  let site: Awaited<ReturnType<typeof serve>>;

  const start = async (options: Partial<Parameters<typeof edge>[0]>): Promise<void> => {
    handler = edge({ upstream: up.url, ...options });
    site = await serve(handler);
  };

  beforeEach(async () => {
    up = await fakeUpstream();
  });

  afterEach(async () => {
    handler?.close();
    await site?.close();
    await up.close();
  });

  it('holds at most maxSize bytes: the least recently used go first, and come from upstream again', async () => {
    await start({ maxSize: 1024 * KIB, maxEntrySize: 256 * KIB });
    for (let i = 0; i < 20; i++) up.route(`/f${i}`, answer(Buffer.alloc(100 * KIB, i), { 'Cache-Control': 'max-age=600' }));
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${site.url}/f${i}`);
      expect((await r.arrayBuffer()).byteLength).toBe(100 * KIB);
      expect(handler.stats().bytesHeld).toBeLessThanOrEqual(1024 * KIB);
    }
    const { bytesHeld, entries } = handler.stats();
    // 100 KiB of body plus headers, key and 512 bytes of bookkeeping each: 10 fit in 1 MiB, not 11.
    expect(entries).toBe(10);
    expect(bytesHeld).toBeGreaterThan(10 * 100 * KIB);
    expect((await fetch(`${site.url}/f19`).then((r) => r.headers.get('x-cache')))).toBe('HIT');
    expect((await fetch(`${site.url}/f0`).then((r) => r.headers.get('x-cache')))).toBe('MISS');
    expect(up.count('/f0')).toBe(2);
    expect(up.count('/f19')).toBe(1);
  });

  it('holds at most max entries', async () => {
    await start({ max: 3 });
    for (let i = 0; i < 6; i++) up.route(`/f${i}`, answer(`f${i}`, { 'Cache-Control': 'max-age=600' }));
    for (let i = 0; i < 6; i++) await fetch(`${site.url}/f${i}`).then((r) => r.text());
    expect(handler.stats().entries).toBe(3);
    expect(await fetch(`${site.url}/f5`).then((r) => r.headers.get('x-cache'))).toBe('HIT');
    expect(await fetch(`${site.url}/f0`).then((r) => r.headers.get('x-cache'))).toBe('MISS');
  });

  it.each([
    ['with a Content-Length', true],
    ['chunked', false],
  ])('a body over maxEntrySize (%s) is served whole, streamed and never kept', async (_what, withLength) => {
    await start({ maxEntrySize: 64 * KIB });
    const big = Buffer.alloc(300 * KIB, 9);
    up.route('/big', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'video/mp4', 'Cache-Control': 'max-age=600', ...(withLength ? { 'Content-Length': String(big.length) } : {}) });
      // In pieces, as a network delivers it.
      for (let i = 0; i < big.length; i += 16 * KIB) res.write(big.subarray(i, i + 16 * KIB));
      res.end();
    });
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${site.url}/big`);
      expect([r.status, r.headers.get('x-cache'), r.headers.get('content-type'), r.headers.get('content-length')]).toEqual([
        200,
        'MISS',
        'video/mp4',
        withLength ? String(big.length) : null,
      ]);
      expect(Buffer.from(await r.arrayBuffer()).equals(big)).toBe(true);
    }
    // Per client request: the shared request that found it too large (cut short), then its own stream.
    expect(up.count('/big')).toBe(4);
    expect(handler.stats()).toMatchObject({ passes: 2, entries: 0, bytesHeld: 0, upstreamInflight: 0 });
    const head = await fetch(`${site.url}/big`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
    await sleep(20);
    expect(handler.stats().upstreamInflight).toBe(0);
  });

  it('a declared body over maxResponseSize is refused with 502; an undeclared one is cut there', async () => {
    await start({ maxEntrySize: 64 * KIB, maxResponseSize: 256 * KIB });
    up.route('/declared', (_req, res) => {
      res.writeHead(200, { 'Content-Length': String(1024 * KIB), 'Cache-Control': 'max-age=600' });
      res.end(Buffer.alloc(1024 * KIB));
    });
    let stop = false;
    up.route('/endless', (_req, res) => {
      res.writeHead(200, { 'Cache-Control': 'max-age=600' });
      const more = (): void => {
        if (stop || res.destroyed) return void res.end();
        if (res.write(Buffer.alloc(32 * KIB))) setImmediate(more);
        else res.once('drain', more);
      };
      more();
    });
    const refused = await fetch(`${site.url}/declared`);
    expect([refused.status, await refused.text()]).toEqual([502, "edge: upstream response of 1048576 bytes exceeds the edge's maxResponseSize\n"]);
    // The edge cuts the connection once it would pass on more than maxResponseSize.
    const received = await new Promise<{ bytes: number; error: string | undefined }>((ok) => {
      let bytes = 0;
      http.get(`${site.url}/endless`, (res) => {
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => ok({ bytes, error: undefined }));
        res.on('error', (e) => ok({ bytes, error: e.message }));
        res.on('aborted', () => ok({ bytes, error: 'aborted' }));
      });
    });
    stop = true;
    expect(received.error).toBeDefined();
    expect(received.bytes).toBeLessThanOrEqual(256 * KIB);
    await sleep(50);
    expect(handler.stats()).toMatchObject({ upstreamInflight: 0, entries: 0 });
  });

  it('maxUpstreamRequests: past it 503 with Retry-After; requests that join one in flight need no slot', async () => {
    await start({ maxUpstreamRequests: 1 });
    let release: () => void = () => undefined;
    up.route('/held', (req, res) => {
      release = () => answer('held', { 'Cache-Control': 'max-age=60' })(req, res);
    });
    up.route('/other', answer('other', { 'Cache-Control': 'max-age=60' }));
    const first = fetch(`${site.url}/held`).then((r) => r.text());
    await sleep(50);
    const joined = fetch(`${site.url}/held`).then((r) => r.text());
    const busy = await fetch(`${site.url}/other`);
    expect([busy.status, busy.headers.get('retry-after'), await busy.text()]).toEqual([
      503,
      '1',
      'edge: the edge has 1 upstream requests in flight (maxUpstreamRequests)\n',
    ]);
    release();
    expect([await first, await joined]).toEqual(['held', 'held']);
    expect(await fetch(`${site.url}/other`).then((r) => r.text())).toBe('other');
  });
});
