/**
 * CMAF upload (DASH-IF live media ingest, Interface 1, one segment per request) on an ordinary `.isml`
 * point, from a real encoder: ffmpeg's DASH muxer PUTs its MPD, each track's init segment and its 2 s
 * segments of one-frame chunks (`-f dash -streaming 1`) for two H.264 bitrates and AAC, live. The
 * point lists them as the StreamIndexes `video` (two quality levels) and `audio`, one fragment per
 * segment, and serves them as Smooth, DASH and HLS; GStreamer and dash.js (Smooth), dash.js (DASH) and
 * hls.js (HLS) play them. The encoder's last MPD (`type="static"`) stops the point. Then the refusals,
 * over HTTP, with the DASH-IF ingest statuses.
 */
import { cmafPlaySuite, FFMPEG } from '../helpers/cmaf-play';
import { push } from '../helpers/ffmpeg';
import { PPS, SPS, avcC, box, cat, fragment, ftyp, moov, payload, str, u32, visualEntry } from '../helpers/fmp4';
import { RawPost, origin, request } from '../helpers/raw-ingest';
import { TestServer, startServer } from '../helpers/server';
import { withTools } from '../helpers/tools';

const BITRATES = [600, 200];
const PUSH_SECONDS = 32;

describe('CMAF upload from ffmpeg -f dash, played as Smooth, DASH and HLS', () => {
  const { play, playerTests } = cmafPlaySuite({
    label: 'CMAF upload',
    push: (ffmpeg, url) => push({ ffmpeg, url, seconds: PUSH_SECONDS, bitrates: BITRATES, dash: true }),
    gstSeconds: 15,
    pageSeconds: 12,
    pageWallSeconds: 30,
  });

  withTools(['ffmpeg', FFMPEG])('the point lists the uploaded representations as StreamIndexes, one 2 s fragment per segment, and serves Smooth fragments with tfxd', async () => {
    const video = play.manifest.split('<StreamIndex').find((x) => /Type="video"/.test(x))!;
    const audio = play.manifest.split('<StreamIndex').find((x) => /Type="audio"/.test(x))!;
    expect(video).toMatch(/Name="video"/);
    expect([...video.matchAll(/Bitrate="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => b - a)).toEqual(BITRATES.map((b) => b * 1000));
    expect(audio).toMatch(/Name="audio"[\s\S]*Bitrate="96000"[\s\S]*FourCC="AACL"/);
    expect(video).toMatch(/FourCC="H264"/);
    // ffmpeg's times start at 0 in each track's timescale (tfdt); its one-frame chunks make 2 s fragments.
    const t = /<c t="(\d+)" d="(\d+)"/.exec(video)!;
    expect(t[1]).toBe('0');
    expect(Number(t[2]) / Number(/TimeScale="(\d+)"/.exec(video)![1])).toBeCloseTo(2, 5);
    const r = await fetch(`${play.server.base}/ch1.isml/QualityLevels(${BITRATES[1]! * 1000})/Fragments(video=${t[1]})`);
    const body = Buffer.from(await r.arrayBuffer());
    expect(r.status).toBe(200);
    expect(body.includes(Buffer.from('6d1d9b0542d544e680e2141daff757b2', 'hex'))).toBe(true); // tfxd
    const point = (await play.server.handler.origin.resolve('ch1.isml'))!;
    expect(point.streams.map((x) => x.id).sort()).toEqual(['audio-2.cmfa', 'video-0.cmfv', 'video-1.cmfv']);
  });

  playerTests();

  withTools(['ffmpeg', FFMPEG])('the encoder\'s last MPD (type="static") stops the point', async () => {
    await play.players;
    const { code, stderr } = await play.encoder.done;
    expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const point = (await play.server.handler.origin.resolve('ch1.isml'))!;
    const end = Date.now() + 10_000;
    while (point.state !== 'Stopped' && Date.now() < end) await new Promise((ok) => setTimeout(ok, 200));
    expect(point.state).toBe('Stopped');
    // Every segment's fragment is in the window: 2 s apart, none lost between requests.
    const video = (await (await fetch(`${play.server.base}/ch1.isml/Manifest`)).text()).split('<StreamIndex').find((x) => /Type="video"/.test(x))!;
    expect(video.match(/<c\b/g)!.length).toBeGreaterThanOrEqual(PUSH_SECONDS / 2 - 1);
  }, 90_000);
});

describe('CMAF upload refusals over HTTP', () => {
  let s: TestServer;
  const btrt = box('btrt', u32(0), u32(300_000), u32(300_000));
  const track = (trackId: number) => ({ trackId, kind: 'video' as const, timescale: 12800, entry: visualEntry('avc1', 320, 180, avcC([SPS], [PPS]), btrt) });
  const init = (tracks = 1): Buffer => cat(ftyp('cmfc', 0, ['iso6', 'cmfc']), moov(Array.from({ length: tracks }, (_, i) => track(i + 1))));
  const segment = (n: number): Buffer =>
    cat(
      box('styp', str('msdh'), u32(0), str('msdh')),
      ...Array.from({ length: 25 }, (_, k) =>
        fragment(k + 1, [{ trackId: 1, time: 0, decodeTime: n * 12800 + k * 512, duration: 512, samples: [payload(64, k)], noTfxd: true }], { defaultBaseIsMoof: true })),
    );
  const mpd =
    '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"><Period><AdaptationSet contentType="video">' +
    '<Representation id="v" bandwidth="300000"><SegmentTemplate initialization="v/init.mp4" media="v/$Number$.m4s"/></Representation>' +
    '</AdaptationSet></Period></MPD>';
  const put = async (p: string, body: Buffer | string, method = 'PUT'): Promise<[number, string]> => {
    const r = await fetch(`${s.base}/${p}`, { method, body: method === 'DELETE' ? undefined : body });
    return [r.status, (await r.text()).trim()];
  };

  beforeAll(async () => {
    s = await startServer({ ingestIdleTimeout: 5000 });
    s.define('up.isml', { startOnFirstRequest: 'true' });
    s.define('idle.isml', { startOnFirstRequest: 'false' });
  });
  afterAll(() => s.close());

  it('412 for a segment before its init, 404 for an unknown path or point, 415 for a two-track init, 400 for garbage, 403 for a point that takes no encoder', async () => {
    expect(await put('up.isml/v/1.m4s', segment(1))).toEqual([404, 'no MPD names v/1.m4s: post the MPD first']);
    expect(await put('up.isml/live.mpd', mpd, 'POST')).toEqual([200, '']);
    expect(await put('up.isml/v/1.m4s', segment(1))).toEqual([412, 'representation v has no init segment: send v/init.mp4 first']);
    expect(await put('up.isml/w/1.m4s', segment(1))).toEqual([404, 'no SegmentTemplate of the MPD names w/1.m4s']);
    expect(await put('none.isml/live.mpd', mpd)).toEqual([404, 'no publishing point none.isml']);
    expect(await put('up.isml/v/init.mp4', init(2))).toEqual([415, 'a CMAF header carries one track; this moov has 2']);
    expect((await put('up.isml/v/init.mp4', 'garbage, not boxes'))[0]).toBe(400);
    expect((await put('up.isml/live.mpd', '<MPD><Period>'))[0]).toBe(400);
    expect((await request(origin(s.base), '/live/up.isml/a/%2e%2e/b.mpd', { method: 'PUT', body: mpd })).status).toBe(400);
    expect(await put('idle.isml/live.mpd', mpd)).toEqual([403, expect.stringMatching(/Idle/)]);
    // What was refused changed nothing: the init and segments still go in.
    expect(await put('up.isml/v/init.mp4', init())).toEqual([200, '']);
    expect(await put('up.isml/v/1.m4s', segment(1), 'POST')).toEqual([200, '']);
    expect(await put('up.isml/v/0.m4s', '', 'DELETE')).toEqual([204, '']);
    const point = (await s.handler.origin.resolve('up.isml'))!;
    expect(point.streams.map((x) => x.id)).toEqual(['video-v.cmfv']);
    expect(await put('up.isml/v/init.mp4', '', 'DELETE')).toEqual([204, '']);
    expect(point.state).toBe('Stopped');
  });

  it('refuses a body over the bound with 413, and cuts off an endless one', async () => {
    s.define('big.isml', { startOnFirstRequest: 'true' });
    expect((await put('big.isml/x.mpd', Buffer.alloc((1 << 20) + 1, 0x20)))[0]).toBe(413);
    const endless = new RawPost(`${s.base}/big.isml/y.mpd`);
    for (let i = 0; i < 256 && !endless.responded && !endless.isClosed; i++) await endless.write(Buffer.alloc(64 << 10, 0x20));
    expect((await endless.response).status).toBe(413);
    await endless.closed;
    expect(endless.sent).toBeLessThan(16 << 20);
  });
});

describe('CMAF upload bodies held at once', () => {
  it('are bounded, all points together, before any is authorized: beyond twice maxBoxSize an upload gets 503', async () => {
    const s = await startServer({ maxBoxSize: 1 << 20 });
    try {
      s.define('a.isml', { startOnFirstRequest: 'true' });
      const posts = [0, 1, 2].map((i) => new RawPost(`${s.base}/a.isml/v/${i}.m4s`));
      // Two bodies of 0.9 MiB fit in the 2 MiB; the third does not.
      for (const p of posts) for (let k = 0; k < 15; k++) await p.write(Buffer.alloc(64 << 10, 1));
      const third = await posts[2]!.response;
      expect([third.status, third.body.toString().trim()]).toEqual([503, expect.stringContaining('uploads hold 2097152 bytes of bodies at once')]);
      expect(posts[0]!.responded || posts[1]!.responded).toBe(false);
      for (const p of posts.slice(0, 2)) p.end();
      // Their bytes are given back once answered: a new upload is read whole again.
      for (const p of posts.slice(0, 2)) expect((await p.response).status).toBe(404);
      const again = await fetch(`${s.base}/a.isml/v/9.m4s`, { method: 'PUT', body: Buffer.alloc(900 << 10, 1) });
      expect(again.status).toBe(404);
      // Bodies that go on after their answer (a point that does not exist) are not counted on.
      for (let i = 0; i < 4; i++) {
        const late = new RawPost(`${s.base}/nope.isml/v/${i}.m4s`);
        await late.write(Buffer.alloc(1000, 1));
        expect((await late.response).status).toBe(404);
        for (let k = 0; k < 15; k++) void late.write(Buffer.alloc(64 << 10, 1)).catch(() => undefined);
      }
      await new Promise((ok) => setTimeout(ok, 200));
      const whole = await fetch(`${s.base}/a.isml/v/10.m4s`, { method: 'PUT', body: Buffer.alloc(1000 << 10, 1) });
      expect(whole.status).toBe(404);
    } finally {
      await s.close();
    }
  });
});
