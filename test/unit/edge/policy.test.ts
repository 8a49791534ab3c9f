/**
 * The caching policy as pure functions: Cache-Control parsing, manifest detection and lifetimes.
 */
import { REVALIDATE_KEEP_MS, isManifest, lifetime, parseCacheControl } from '../../../lib/edge';

const BOUNDS = { maxTtl: 86_400_000, errorTtl: 1000, staleWhileRevalidate: 2000 };
const NOW = 1_700_000_000_000;
const h = (o: Record<string, string>): Headers => new Headers(o);

describe('parseCacheControl', () => {
  it('reads the directives a shared cache acts on', () => {
    expect(parseCacheControl('public, max-age=31536000, immutable')).toMatchObject({ public: true, maxAge: 31536000, immutable: true, noStore: false });
    expect(parseCacheControl('Max-Age=5, S-MAXAGE="30"')).toMatchObject({ maxAge: 5, sMaxAge: 30 });
    expect(parseCacheControl('no-store')).toMatchObject({ noStore: true });
    expect(parseCacheControl('no-cache="Set-Cookie", private')).toMatchObject({ noCache: true, private: true });
    expect(parseCacheControl('proxy-revalidate, stale-while-revalidate=4')).toMatchObject({ mustRevalidate: true, staleWhileRevalidate: 4 });
    expect(parseCacheControl(null)).toMatchObject({ maxAge: undefined, noStore: false });
  });

  it('takes a malformed or repeated lifetime as absent (never guesses a longer one)', () => {
    expect(parseCacheControl('max-age=-1').maxAge).toBeUndefined();
    expect(parseCacheControl('max-age=1.5').maxAge).toBeUndefined();
    expect(parseCacheControl('max-age=10, max-age=20').maxAge).toBeUndefined();
    expect(parseCacheControl('max-age').maxAge).toBeUndefined();
  });
});

describe('isManifest', () => {
  it.each([
    ['/ch1.isml/Manifest', null],
    ['/a/b/ch1.isml/manifest', null],
    ['/ch1.isml/Manifest(format=mpd-time-csf)', null],
    ['/ch1.isml/Manifest(format=m3u8-aapl).m3u8', null],
    ['/ch1.isml/.mpd', null],
    ['/ch1.isml/.m3u8?x=1', null],
    ['/ch1.isml/cmaf/video=800000/index.m3u8', null],
    ['/ch1.ism/Manifest', null],
    ['/whatever', 'application/dash+xml'],
    ['/whatever', 'application/vnd.apple.mpegurl'],
    ['/whatever', 'application/vnd.ms-sstr+xml; charset=utf-8'],
  ])('%s (%s) is a manifest', (path, type) => expect(isManifest(path, type)).toBe(true));

  it.each(['/ch1.isml/QualityLevels(800000)/Fragments(video=0)', '/ch1.isml/cmaf/video=800000/0.m4s', '/ch1.isml/cmaf/video=800000/init.mp4', '/ch1.isml/time', '/Manifest.bak'])(
    '%s is not',
    (path) => expect(isManifest(path, 'video/mp4')).toBe(false),
  );
});

describe('lifetime', () => {
  it('a live manifest (max-age=1): fresh 1 s, stale 2 s more, kept past that as a validator', () => {
    const l = lifetime(200, h({ 'cache-control': 'public, max-age=1', etag: '"m"' }), '/ch1.isml/Manifest', BOUNDS, NOW);
    expect(l).toEqual({ store: true, fresh: 1000, stale: 2000, keep: 1000 + REVALIDATE_KEEP_MS, immutable: false });
  });

  it('a finished fragment: immutable, capped at maxTtl, never stale', () => {
    const l = lifetime(200, h({ 'cache-control': 'public, max-age=31536000, immutable', etag: '"f"' }), '/x/Fragments(video=0)', BOUNDS, NOW);
    expect(l).toEqual({ store: true, fresh: 86_400_000, stale: 0, keep: 86_400_000 + REVALIDATE_KEEP_MS, immutable: true });
  });

  it('media gets only the stale window the upstream grants, within the bound', () => {
    expect(lifetime(200, h({ 'cache-control': 'max-age=2, stale-while-revalidate=1' }), '/f.m4s', BOUNDS, NOW).stale).toBe(1000);
    expect(lifetime(200, h({ 'cache-control': 'max-age=2, stale-while-revalidate=60' }), '/f.m4s', BOUNDS, NOW).stale).toBe(2000);
    expect(lifetime(200, h({ 'cache-control': 'max-age=2' }), '/f.m4s', BOUNDS, NOW).stale).toBe(0);
  });

  it.each([
    [200, { 'cache-control': 'no-store' }],
    [200, { 'cache-control': 'private, max-age=60' }],
    [200, {}],
    [200, { 'cache-control': 'no-cache' }],
    [200, { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' }],
    [200, { 'cache-control': 'max-age=60', vary: 'Origin' }],
    [301, { 'cache-control': 'max-age=60', location: '/x' }],
    [403, { 'cache-control': 'max-age=60' }],
    [500, { 'cache-control': 'max-age=60' }],
  ])('%i %j is not kept', (status, headers) => {
    expect(lifetime(status, h(headers), '/x', BOUNDS, NOW).store).toBe(false);
  });

  it('no-cache with an ETag is kept as a validator only', () => {
    expect(lifetime(200, h({ 'cache-control': 'no-cache', etag: '"a"' }), '/x', BOUNDS, NOW)).toEqual({ store: true, fresh: 0, stale: 0, keep: REVALIDATE_KEEP_MS, immutable: false });
  });

  it('Vary: Accept-Encoding alone does not prevent keeping (the edge always asks for identity)', () => {
    expect(lifetime(200, h({ 'cache-control': 'max-age=5', vary: 'Accept-Encoding' }), '/x', BOUNDS, NOW).fresh).toBe(5000);
  });

  it.each([404, 410, 412])('%i: errorTtl whatever it says', (status) => {
    expect(lifetime(status, h({ 'cache-control': 'max-age=3600' }), '/x', BOUNDS, NOW)).toEqual({ store: true, fresh: 1000, stale: 0, keep: 1000, immutable: false });
    expect(lifetime(status, h({ 'cache-control': 'no-store' }), '/x', { ...BOUNDS, errorTtl: 500 }, NOW).fresh).toBe(500);
    expect(lifetime(status, h({}), '/x', { ...BOUNDS, errorTtl: 0 }, NOW).store).toBe(false);
  });

  it('Expires, by the Date it came with; an invalid one is already expired', () => {
    const date = new Date(NOW - 60_000);
    expect(lifetime(200, h({ date: date.toUTCString(), expires: new Date(date.getTime() + 30_000).toUTCString() }), '/x', BOUNDS, NOW).fresh).toBe(30_000);
    expect(lifetime(200, h({ expires: '0' }), '/x', BOUNDS, NOW).store).toBe(false);
  });
});
