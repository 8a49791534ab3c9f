/**
 * Ingest crafted to cost the server far more than the bytes sent, against a running server: each is
 * refused with 400 and its reason, in bounded time and memory, and a stream pushed afterwards to
 * another point is served as usual.
 */
import { startServer, TestServer } from '../helpers/server';
import { RawPost, Reply, fixture, get, headerWithLsm, lsmBox, parseManifest, replay } from '../helpers/raw-ingest';
import { fullBox, i32, mfhd, selfOffsetFragment, tfhd, tfxd, traf, u32, zeros } from '../helpers/fmp4';

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** 400, a short plain-text reason matching `reason`, and the socket closed by the server. */
async function expectRefused(post: RawPost, reason: RegExp): Promise<Reply> {
  const reply = await within(post.response, 10_000, 'response');
  expect(reply.status).toBe(400);
  expect(reply.headers['content-type']).toMatch(/^text\/plain/);
  expect(reply.text).toMatch(reason);
  expect(reply.text.length).toBeLessThan(300);
  await within(post.closed, 5000, 'socket close');
  return reply;
}

describe('ingest that would cost more than it sends', () => {
  let srv: TestServer;
  const rejected: Array<{ point: string; code: string; message: string }> = [];
  const url = (point: string): string => `${srv.base}/${point}.isml/Streams(attack)`;
  const codeOf = (point: string): string[] => rejected.filter((e) => e.point === `${point}.isml`).map((e) => e.code);

  beforeAll(async () => {
    srv = await startServer();
    srv.handler.origin.on('inputRejected', (e) => rejected.push(e));
  });

  afterAll(async () => {
    await srv?.close();
  });

  it('a 3 MB trun declaring one sample per byte of its size (size 0 by default, empty mdat), three times: 400, nothing stored, memory flat', async () => {
    srv.define('trun-bomb.isml');
    const count = 3_000_000;
    const bomb = selfOffsetFragment(
      (off) => [
        mfhd(1),
        traf(
          tfhd({ trackId: 1, defaultSampleDuration: 1, defaultSampleSize: 0, defaultSampleFlags: 0 }),
          fullBox('trun', 0, 0x000001, u32(count), i32(off), zeros(count)),
          tfxd(0, 10_000_000),
        ),
      ],
      Buffer.alloc(0),
    );
    global.gc?.();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 3; i++) {
      const post = new RawPost(url('trun-bomb'));
      await post.write(Buffer.concat([fixture().header, bomb]));
      await expectRefused(post, /declares 3000000 samples but its mdat holds 0 bytes/);
    }
    // One object per declared sample took 346 MB per million.
    expect(process.memoryUsage().rss - before).toBeLessThan(200 << 20);
    expect(codeOf('trun-bomb')).toEqual(['ERR_BAD_FRAGMENT', 'ERR_BAD_FRAGMENT', 'ERR_BAD_FRAGMENT']);
    const manifest = await get(`${srv.base}/trun-bomb.isml/Manifest`);
    expect(manifest.status).not.toBe(200);
  });

  it('a 1 MB run of NULs inside the Live Server Manifest box: 400 at once', async () => {
    srv.define('nul-run.isml');
    const post = new RawPost(url('nul-run'));
    await post.write(headerWithLsm((smil) => smil.replace('<body>', `<body>${'\0'.repeat(1_000_000)}`)));
    await expectRefused(post, /Live Server Manifest contains a NUL character/);
    expect(codeOf('nul-run')).toEqual(['ERR_BAD_HEADER']);
  });

  it('a 31 MB attribute list in the Live Server Manifest box: 400 from the box header, before the rest is sent', async () => {
    srv.define('lsm-huge.isml');
    const f = fixture();
    const huge = lsmBox(`<smil><body><switch><video ${'a="1" '.repeat(5_200_000)}/></switch></body></smil>`);
    expect(huge.length).toBeGreaterThan(31_000_000);
    const post = new RawPost(url('lsm-huge'));
    await post.write(Buffer.concat([f.ftyp, huge.subarray(0, 64 * 1024)]));
    await expectRefused(post, new RegExp(`Live Server Manifest box of ${huge.length} bytes exceeds 1048576`));
    expect(post.sent).toBeLessThan(128 * 1024);
    expect(codeOf('lsm-huge')).toEqual(['ERR_BAD_HEADER']);
  });

  it('an attribute list within 1 MiB but past the attribute caps: 400 with the cap named', async () => {
    srv.define('lsm-attrs.isml');
    const post = new RawPost(url('lsm-attrs'));
    await post.write(headerWithLsm((smil) => smil.replace('<video ', `<video ${Array.from({ length: 100 }, (_, i) => `x${i}="1"`).join(' ')} `)));
    await expectRefused(post, /more than 64 attributes/);
    expect(codeOf('lsm-attrs')).toEqual(['ERR_BAD_HEADER']);
  });

  it('afterwards a real stream is taken and served as usual', async () => {
    srv.define('good.isml');
    const reply = await replay(`${srv.base}/good.isml/Streams(good)`, fixture().all);
    expect(reply.status).toBe(200);
    const m = await get(`${srv.base}/good.isml/Manifest`);
    expect(m.status).toBe(200);
    expect(parseManifest(m.text).streams.find((s) => s.type === 'video')?.fragments.length).toBe(4);
  });
});

describe('partly received boxes count in the origin byte budget (maxBytes)', () => {
  const MAX = 64 * 2 ** 20;
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startServer({ maxBytes: MAX });
  });

  afterAll(async () => {
    await srv?.close();
  });

  it('20 encoders each sending 8 MiB of a 30 MB mdat: those past the budget get 503 with the reason, memory stays within it', async () => {
    const f = fixture();
    const posts: RawPost[] = [];
    for (let i = 0; i < 20; i++) {
      srv.define(`partial${i}.isml`);
      posts.push(new RawPost(`${srv.base}/partial${i}.isml/Streams(p${i})`));
    }
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = 0;
    const sample = setInterval(() => (peak = Math.max(peak, srv.handler.origin.memory.used)), 5);
    await Promise.all(
      posts.map(async (post) => {
        await post.write(Buffer.concat([f.header, u32(30_000_000), Buffer.from('mdat')]));
        for (let mib = 0; mib < 8 && !post.responded; mib++) await post.write(Buffer.alloc(2 ** 20));
      }),
    );
    clearInterval(sample);
    const used = srv.handler.origin.memory.used;
    expect(used).toBeLessThanOrEqual(MAX);
    expect(peak).toBeLessThanOrEqual(MAX);
    // Without the budget the 20 partial boxes held 160 MiB (and 30 MB boxes 600 MB).
    expect(process.memoryUsage().rss - before).toBeLessThan(150 * 2 ** 20);
    // 7 boxes of 8 MiB fit beside what the points hold; the answers to the others may still be on the way.
    const refused = await within(
      (async () => {
        while (posts.filter((p) => p.responded).length < 12) await new Promise((ok) => setTimeout(ok, 20));
        return posts.filter((p) => p.responded);
      })(),
      5000,
      '12 refusals',
    );
    expect(refused.length).toBeLessThanOrEqual(13);
    for (const post of refused) {
      const reply = await within(post.response, 10_000, 'response');
      expect(reply.status).toBe(503);
      expect(reply.text).toMatch(/byte budget/);
    }
    // The ones still open hold what they sent; when they go, so do their bytes.
    for (const post of posts) post.destroy();
    await Promise.all(posts.map((p) => within(p.closed, 5000, 'close')));
    const closed = await within(
      (async () => {
        while (srv.handler.origin.memory.used > 1 << 20) await new Promise((ok) => setTimeout(ok, 20));
        return srv.handler.origin.memory.used;
      })(),
      5000,
      'memory released',
    );
    expect(closed).toBeLessThan(1 << 20);
  });

  it('a real stream is then taken and served', async () => {
    srv.define('good.isml');
    const reply = await replay(`${srv.base}/good.isml/Streams(good)`, fixture().all);
    expect(reply.status).toBe(200);
    expect((await get(`${srv.base}/good.isml/Manifest`)).status).toBe(200);
  });
});
