/**
 * How long the edge keeps what, on a fake clock: lifetimes from the upstream's Cache-Control
 * (s-maxage over max-age, Age subtracted, no-store / private / no-cache, immutable), Age on hits,
 * stale-while-revalidate for manifests with one background refresh and a bounded window,
 * revalidation with If-None-Match, and 404 / 410 / 412 kept one second at most.
 */
import { edge, EdgeHandler } from '../../../lib';
import { FakeUpstream, answer, fakeClock, fakeUpstream, serve, sleep } from '../../helpers/fake-upstream';

describe('edge: lifetimes', () => {
  let up: FakeUpstream;
  let handler: EdgeHandler;
  let site: Awaited<ReturnType<typeof serve>>;
  let clock: ReturnType<typeof fakeClock>;

  const start = async (options: Partial<Parameters<typeof edge>[0]> = {}): Promise<void> => {
    handler = edge({ upstream: up.url, clock, ...options });
    site = await serve(handler);
  };
  const get = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; cache: string | null; age: string | null; body: string; etag: string | null }> => {
    const r = await fetch(`${site.url}${path}`, { headers });
    return { status: r.status, cache: r.headers.get('x-cache'), age: r.headers.get('age'), body: await r.text(), etag: r.headers.get('etag') };
  };

  beforeEach(async () => {
    up = await fakeUpstream();
    clock = fakeClock();
  });

  afterEach(async () => {
    handler?.close();
    await site?.close();
    await up.close();
  });

  describe('Cache-Control', () => {
    beforeEach(() => start());

    it('keeps a response for its max-age, with Age counting the time held', async () => {
      up.route('/f', answer('x', { 'Cache-Control': 'public, max-age=10' }));
      expect(await get('/f')).toMatchObject({ cache: 'MISS', age: '0' });
      clock.advance(3500);
      expect(await get('/f')).toMatchObject({ cache: 'HIT', age: '3' });
      clock.advance(6000);
      expect(await get('/f')).toMatchObject({ cache: 'HIT', age: '9' });
      expect(up.count()).toBe(1);
      clock.advance(600);
      expect(await get('/f')).toMatchObject({ cache: 'MISS', age: '0' });
      expect(up.count()).toBe(2);
    });

    it('s-maxage wins over max-age (the edge is a shared cache)', async () => {
      up.route('/f', answer('x', { 'Cache-Control': 'max-age=1, s-maxage=30' }));
      await get('/f');
      clock.advance(20_000);
      expect(await get('/f')).toMatchObject({ cache: 'HIT', age: '20' });
      clock.advance(10_001);
      expect((await get('/f')).cache).toBe('MISS');
      expect(up.count()).toBe(2);
    });

    it("subtracts the upstream's Age from the lifetime and adds it to the Age it serves", async () => {
      up.route('/f', answer('x', { 'Cache-Control': 'max-age=10', Age: '8' }));
      expect(await get('/f')).toMatchObject({ cache: 'MISS', age: '8' });
      clock.advance(1000);
      expect(await get('/f')).toMatchObject({ cache: 'HIT', age: '9' });
      clock.advance(1001);
      expect((await get('/f')).cache).toBe('MISS');
      expect(up.count()).toBe(2);
    });

    it.each([['no-store'], ['private, max-age=60'], ['public, max-age=60, no-store']])('never keeps "%s"', async (cc) => {
      up.route('/f', answer('x', { 'Cache-Control': cc }));
      for (let i = 0; i < 3; i++) expect(await get('/f')).toMatchObject({ status: 200, cache: 'MISS', age: null });
      expect(up.count()).toBe(3);
      expect(handler.stats().entries).toBe(0);
    });

    it('never keeps a response without a lifetime or validator, one that sets a cookie, or one that varies', async () => {
      up.route('/plain', answer('x'));
      up.route('/cookie', answer('x', { 'Cache-Control': 'max-age=60', 'Set-Cookie': 'a=b' }));
      up.route('/vary', answer('x', { 'Cache-Control': 'max-age=60', Vary: 'Cookie' }));
      for (const p of ['/plain', '/cookie', '/vary', '/plain', '/cookie', '/vary']) expect((await get(p)).cache).toBe('MISS');
      expect(up.count()).toBe(6);
    });

    it('no-cache with an ETag: kept as a validator, revalidated (If-None-Match) on every use; a 304 serves the held body', async () => {
      let version = 1;
      up.route('/m', (req, res) => {
        const etag = `"v${version}"`;
        if (req.headers['if-none-match'] === etag) {
          res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache' });
          return res.end();
        }
        answer(`body ${version}`, { ETag: etag, 'Cache-Control': 'no-cache' })(req, res);
      });
      expect(await get('/m')).toMatchObject({ cache: 'MISS', body: 'body 1' });
      expect(await get('/m')).toMatchObject({ cache: 'REVALIDATED', body: 'body 1', etag: '"v1"' });
      version = 2;
      expect(await get('/m')).toMatchObject({ cache: 'MISS', body: 'body 2' });
      expect(up.received.map((r) => r.ifNoneMatch)).toEqual([undefined, '"v1"', '"v1"']);
      expect(handler.stats()).toMatchObject({ misses: 2, revalidated: 1, hits: 0 });
    });

    it('a client reload (no-cache) revalidates a held response a second old or more, but not an immutable one', async () => {
      up.route('/mutable', (req, res) => {
        if (req.headers['if-none-match'] === '"a"') {
          res.writeHead(304, { ETag: '"a"', 'Cache-Control': 'max-age=60' });
          return res.end();
        }
        answer('a', { ETag: '"a"', 'Cache-Control': 'max-age=60' })(req, res);
      });
      up.route('/immutable', answer('b', { ETag: '"b"', 'Cache-Control': 'public, max-age=31536000, immutable' }));
      await get('/mutable');
      await get('/immutable');
      // However many clients reload, one conditional request per second at most goes upstream.
      expect((await get('/mutable', { 'Cache-Control': 'no-cache' })).cache).toBe('HIT');
      clock.advance(1000);
      expect((await get('/mutable', { 'Cache-Control': 'no-cache' })).cache).toBe('REVALIDATED');
      clock.advance(1000);
      expect((await get('/mutable', { Pragma: 'no-cache' })).cache).toBe('REVALIDATED');
      clock.advance(5000);
      expect((await get('/immutable', { 'Cache-Control': 'max-age=0' })).cache).toBe('HIT');
      expect(up.count('/mutable')).toBe(3);
      expect(up.count('/immutable')).toBe(1);
    });

    it('caps any lifetime at maxTtl', async () => {
      handler.close();
      await site.close();
      await start({ maxTtl: 60_000 });
      up.route('/f', answer('x', { 'Cache-Control': 'max-age=31536000, immutable' }));
      await get('/f');
      clock.advance(59_999);
      expect((await get('/f')).cache).toBe('HIT');
      clock.advance(2);
      expect((await get('/f')).cache).toBe('MISS');
    });

    it('takes Expires when there is no max-age', async () => {
      const date = new Date(1_700_000_000_000);
      up.route('/f', answer('x', { Date: date.toUTCString(), Expires: new Date(date.getTime() + 5000).toUTCString() }));
      await get('/f');
      clock.advance(4000);
      expect((await get('/f')).cache).toBe('HIT');
      clock.advance(1001);
      expect((await get('/f')).cache).toBe('MISS');
    });
  });

  describe('stale-while-revalidate (manifests)', () => {
    it('serves an expired manifest stale while one background request refreshes it, then the new one', async () => {
      await start({ staleWhileRevalidate: 2000 });
      let version = 1;
      let delay = 0;
      up.route('/ch1.isml/Manifest', (req, res) =>
        setTimeout(() => answer(`manifest ${version}`, { 'Content-Type': 'application/vnd.ms-sstr+xml', 'Cache-Control': 'public, max-age=1', ETag: `"m${version}"` })(req, res), delay),
      );
      expect(await get('/ch1.isml/Manifest')).toMatchObject({ cache: 'MISS', body: 'manifest 1' });
      version = 2;
      delay = 200;
      clock.advance(1500);
      // Ten players reload at once: all get the stale manifest at once, and one refresh goes upstream.
      const burst = await Promise.all(Array.from({ length: 10 }, () => get('/ch1.isml/Manifest')));
      expect(burst.map((b) => `${b.cache} ${b.body}`)).toEqual(Array(10).fill('STALE manifest 1'));
      expect(burst[0]!.age).toBe('1');
      await sleep(400);
      expect(up.count()).toBe(2);
      expect(up.received[1]!.ifNoneMatch).toBe('"m1"');
      expect(await get('/ch1.isml/Manifest')).toMatchObject({ cache: 'HIT', body: 'manifest 2' });
      expect(handler.stats()).toMatchObject({ stale: 10, misses: 1, hits: 1 });
    });

    it('never past the stale window: a manifest expired longer ago waits for the upstream', async () => {
      await start({ staleWhileRevalidate: 2000 });
      let version = 1;
      up.route('/ch1.isml/.mpd', (req, res) => answer(`mpd ${version}`, { 'Content-Type': 'application/dash+xml', 'Cache-Control': 'public, max-age=1' })(req, res));
      await get('/ch1.isml/.mpd');
      version = 2;
      clock.advance(1000 + 2000 + 1);
      expect(await get('/ch1.isml/.mpd')).toMatchObject({ cache: 'MISS', body: 'mpd 2' });
      expect(up.count()).toBe(2);
    });

    it('a 304 to the refresh extends the held manifest: served fresh again without a body transfer', async () => {
      await start();
      up.route('/ch1.isml/.m3u8', (req, res) => {
        if (req.headers['if-none-match'] === '"h1"') {
          res.writeHead(304, { ETag: '"h1"', 'Cache-Control': 'public, max-age=1' });
          return res.end();
        }
        answer('#EXTM3U', { 'Content-Type': 'application/vnd.apple.mpegurl', 'Cache-Control': 'public, max-age=1', ETag: '"h1"' })(req, res);
      });
      await get('/ch1.isml/.m3u8');
      clock.advance(1200);
      expect((await get('/ch1.isml/.m3u8')).cache).toBe('STALE');
      await sleep(100);
      expect(up.received.map((r) => r.ifNoneMatch)).toEqual([undefined, '"h1"']);
      expect(await get('/ch1.isml/.m3u8')).toMatchObject({ cache: 'HIT', age: '0', body: '#EXTM3U' });
      clock.advance(999);
      expect((await get('/ch1.isml/.m3u8')).cache).toBe('HIT');
      expect(up.count()).toBe(2);
    });

    it('a refresh that fails leaves the stale manifest, within its window only', async () => {
      await start({ staleWhileRevalidate: 2000, coolDown: 0 });
      let broken = false;
      up.route('/ch1.isml/Manifest', (req, res) => {
        if (broken) {
          res.writeHead(500, { 'Content-Length': '0' });
          return res.end();
        }
        answer('manifest', { 'Cache-Control': 'max-age=1' })(req, res);
      });
      await get('/ch1.isml/Manifest');
      broken = true;
      clock.advance(1500);
      expect((await get('/ch1.isml/Manifest')).cache).toBe('STALE');
      await sleep(100);
      expect((await get('/ch1.isml/Manifest')).cache).toBe('STALE');
      await sleep(100);
      clock.advance(1600);
      expect(await get('/ch1.isml/Manifest')).toMatchObject({ status: 502 });
    });

    it('is not applied to media: an expired fragment waits for the upstream', async () => {
      await start();
      up.route('/ch1.isml/QualityLevels(1)/Fragments(video=0)', answer('f', { 'Content-Type': 'video/mp4', 'Cache-Control': 'public, max-age=1' }));
      await get('/ch1.isml/QualityLevels(1)/Fragments(video=0)');
      clock.advance(1100);
      expect((await get('/ch1.isml/QualityLevels(1)/Fragments(video=0)')).cache).toBe('MISS');
    });

    it('respects must-revalidate, and staleWhileRevalidate: 0', async () => {
      await start({ staleWhileRevalidate: 0 });
      up.route('/a/Manifest', answer('m', { 'Cache-Control': 'max-age=1' }));
      await get('/a/Manifest');
      clock.advance(1100);
      expect((await get('/a/Manifest')).cache).toBe('MISS');
      handler.close();
      await site.close();
      await start();
      up.route('/b/Manifest', answer('m', { 'Cache-Control': 'max-age=1, must-revalidate' }));
      await get('/b/Manifest');
      clock.advance(1100);
      expect((await get('/b/Manifest')).cache).toBe('MISS');
    });
  });

  describe('content not there yet: 404, 410, 412', () => {
    it.each([404, 410, 412])('%i is kept one second at most, even when the upstream says longer', async (status) => {
      await start();
      let there = false;
      up.route('/ch1.isml/QualityLevels(1)/Fragments(video=40000000)', (req, res) => {
        if (there) return answer('now there', { 'Cache-Control': 'max-age=60' })(req, res);
        answer('', { 'Cache-Control': status === 412 ? 'no-store' : 'max-age=60' }, status)(req, res);
      });
      const path = '/ch1.isml/QualityLevels(1)/Fragments(video=40000000)';
      expect(await get(path)).toMatchObject({ status, cache: 'MISS' });
      there = true;
      clock.advance(999);
      expect(await get(path)).toMatchObject({ status, cache: 'HIT' });
      clock.advance(1);
      expect(await get(path)).toMatchObject({ status: 200, cache: 'MISS', body: 'now there' });
      expect(up.count()).toBe(2);
    });

    it('errorTtl: 0 keeps none (each is asked again)', async () => {
      await start({ errorTtl: 0 });
      up.route('/x', answer('', { 'Cache-Control': 'no-store' }, 412));
      await get('/x');
      await get('/x');
      expect(up.count()).toBe(2);
    });

    it('does not keep other client errors or redirects (passed through with Location)', async () => {
      await start();
      up.route('/r', answer('moved', { Location: '/elsewhere', 'Cache-Control': 'max-age=60' }, 302));
      up.route('/e', answer('bad', { 'Cache-Control': 'max-age=60' }, 400));
      const r = await fetch(`${site.url}/r`, { redirect: 'manual' });
      expect([r.status, r.headers.get('location'), r.headers.get('x-cache')]).toEqual([302, '/elsewhere', 'MISS']);
      await r.text();
      await fetch(`${site.url}/r`, { redirect: 'manual' }).then((x) => x.text());
      expect((await get('/e')).status).toBe(400);
      expect((await get('/e')).status).toBe(400);
      expect(up.count('/r')).toBe(2);
      expect(up.count('/e')).toBe(2);
      // The redirect was not followed by the edge.
      expect(up.count('/elsewhere')).toBe(0);
    });
  });
});
