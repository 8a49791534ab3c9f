/**
 * Request coalescing (lru-cache `fetchMethod`): concurrent misses for one URL make exactly one upstream
 * request, also while the origin holds the request (the newest live fragment waits for its successor).
 */
import type { ServerResponse } from 'node:http';
import { edge, EdgeHandler } from '../../../lib';
import { FakeUpstream, answer, fakeUpstream, serve, sleep } from '../../helpers/fake-upstream';

describe('edge: request coalescing', () => {
  let up: FakeUpstream;
  let handler: EdgeHandler;
  let site: Awaited<ReturnType<typeof serve>>;

  beforeEach(async () => {
    up = await fakeUpstream();
    handler = edge({ upstream: `${up.url}/live` });
    site = await serve(handler);
  });

  afterEach(async () => {
    handler.close();
    await site.close();
    await up.close();
  });

  it('20 concurrent misses for one fragment: one upstream request, 20 identical answers, then hits', async () => {
    const body = Buffer.alloc(100_000, 7);
    up.route('/live/ch1.isml/QualityLevels(800000)/Fragments(video=0)', (req, res) => {
      // A slow origin: every request arrives while the first is in flight.
      setTimeout(() => answer(body, { 'Content-Type': 'video/mp4', 'Cache-Control': 'public, max-age=31536000, immutable', ETag: '"f0"' })(req, res), 300);
    });
    const url = `${site.url}/ch1.isml/QualityLevels(800000)/Fragments(video=0)`;
    const responses = await Promise.all(Array.from({ length: 20 }, () => fetch(url)));
    const bodies = await Promise.all(responses.map(async (r) => Buffer.from(await r.arrayBuffer())));
    expect(up.count()).toBe(1);
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(responses.map((r) => r.headers.get('x-cache'))).toEqual(Array(20).fill('MISS'));
    expect(bodies.every((b) => b.equals(body))).toBe(true);
    expect(handler.stats()).toMatchObject({ misses: 20, coalesced: 19, hits: 0, upstreamRequests: 1 });

    const again = await Promise.all(Array.from({ length: 5 }, () => fetch(url)));
    expect(again.map((r) => r.headers.get('x-cache'))).toEqual(Array(5).fill('HIT'));
    await Promise.all(again.map((r) => r.arrayBuffer()));
    expect(up.count()).toBe(1);
    expect(handler.stats()).toMatchObject({ hits: 5, upstreamRequests: 1 });
  });

  it('a held request for the newest fragment (answered when its successor exists) is shared by every player that asks meanwhile', async () => {
    const held: ServerResponse[] = [];
    up.route('/live/ch1.isml/QualityLevels(800000)/Fragments(video=20000000)', (_req, res) => void held.push(res));
    const url = `${site.url}/ch1.isml/QualityLevels(800000)/Fragments(video=20000000)`;
    // Players arrive over the hold, as they reach the live edge one after the other.
    const pending: Array<Promise<Response>> = [];
    for (let i = 0; i < 30; i++) {
      pending.push(fetch(url));
      await sleep(10);
    }
    await sleep(100);
    expect(held).toHaveLength(1);
    // The successor arrives: the origin answers the one request it holds.
    answer('fragment with tfrf', { 'Content-Type': 'video/mp4', 'Cache-Control': 'public, max-age=1', ETag: '"f2.1"' })(undefined as never, held[0]!);
    const responses = await Promise.all(pending);
    const texts = await Promise.all(responses.map((r) => r.text()));
    expect(up.count()).toBe(1);
    expect(new Set(texts)).toEqual(new Set(['fragment with tfrf']));
    expect(handler.stats()).toMatchObject({ misses: 30, coalesced: 29, upstreamRequests: 1 });
  });

  it('coalesces answers that are not kept too (no-store): one upstream request per burst, none kept after it', async () => {
    up.route('/live/ch1.isml/time', (req, res) => setTimeout(() => answer('2026-01-01T00:00:00.000Z', { 'Cache-Control': 'no-store' })(req, res), 200));
    const url = `${site.url}/ch1.isml/time`;
    const burst = await Promise.all(Array.from({ length: 10 }, () => fetch(url).then((r) => r.text())));
    expect(new Set(burst).size).toBe(1);
    expect(up.count()).toBe(1);
    await fetch(url).then((r) => r.text());
    expect(up.count()).toBe(2);
    expect(handler.stats().entries).toBe(0);
  });

  it('different URLs are not coalesced with each other', async () => {
    for (const t of [0, 20000000, 40000000]) up.route(`/live/a/Fragments(video=${t})`, answer(`f${t}`, { 'Cache-Control': 'max-age=60' }));
    const texts = await Promise.all([0, 20000000, 40000000].map((t) => fetch(`${site.url}/a/Fragments(video=${t})`).then((r) => r.text())));
    expect(texts).toEqual(['f0', 'f20000000', 'f40000000']);
    expect(up.count()).toBe(3);
  });
});
