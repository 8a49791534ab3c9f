/**
 * DASH and HLS from a Smooth ingest, walked as a player would over HTTP: the captured ffmpeg push (two
 * H.264 bitrates + AAC, 1 s fragments) replayed as a live stream. Every MPD `$Time$` and every playlist
 * URI resolves to a CMAF segment whose first sample starts at that time, `tfdt` runs on without a gap
 * from segment to segment, codecs strings match the init segments, two polls agree (anchor, sequence
 * numbers), the end of stream turns both into on-demand presentations, and the `formats` setting and the
 * IIS/Azure URL spellings route as documented.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { mp4boxExtract } from '../helpers/mp4box';
import { RawPost, Reply, fixture, fragmentsOfRound, get, until } from '../helpers/raw-ingest';
import { startServer, TestServer } from '../helpers/server';

const mpdXml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  isArray: (name) => ['Period', 'AdaptationSet', 'Representation', 'S', 'UTCTiming'].includes(name),
});

type Node = Record<string, unknown>;

interface MpdSegment {
  rep: string;
  trackId: number;
  time: bigint;
  duration: bigint;
  timescale: number;
}

/** Every (representation, `$Time$`) of an MPD, S runs expanded. */
function mpdSegments(mpd: Node): Map<string, MpdSegment[]> {
  const out = new Map<string, MpdSegment[]>();
  for (const period of mpd.Period as Node[]) {
    for (const set of period.AdaptationSet as Node[]) {
      const template = set.SegmentTemplate as Node;
      expect(template.media).toBe('cmaf/$RepresentationID$/$Time$.m4s');
      expect(template.initialization).toBe('cmaf/$RepresentationID$/init.mp4');
      const timescale = Number(template.timescale);
      const times: Array<{ t: bigint; d: bigint }> = [];
      let next = 0n;
      for (const s of (template.SegmentTimeline as Node).S as Array<Record<string, string>>) {
        let t = s.t !== undefined ? BigInt(s.t) : next;
        const d = BigInt(s.d!);
        for (let i = 0; i <= Number(s.r ?? '0'); i++) {
          times.push({ t, d });
          t += d;
        }
        next = t;
      }
      for (const rep of set.Representation as Array<Record<string, string>>) {
        out.set(
          rep.id!,
          times.map(({ t, d }) => ({ rep: rep.id!, trackId: 0, time: t, duration: d, timescale })),
        );
      }
    }
  }
  return out;
}

/** Parsed `#EXT…` lines and URIs of a playlist. */
function playlist(text: string): { tags: Map<string, string[]>; entries: Array<{ duration: number; uri: string; discontinuity: boolean }> } {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  expect(lines[0]).toBe('#EXTM3U');
  const tags = new Map<string, string[]>();
  const entries: Array<{ duration: number; uri: string; discontinuity: boolean }> = [];
  let duration: number | undefined;
  let discontinuity = false;
  for (const line of lines.slice(1)) {
    if (line.startsWith('#')) {
      const colon = line.indexOf(':');
      const name = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1);
      tags.set(name, [...(tags.get(name) ?? []), value]);
      if (name === '#EXTINF') duration = Number(value.split(',')[0]);
      if (name === '#EXT-X-STREAM-INF') duration = 0; // a master's variant: its URI follows
      if (name === '#EXT-X-DISCONTINUITY') discontinuity = true;
    } else {
      expect(duration).toBeDefined();
      entries.push({ duration: duration!, uri: line, discontinuity });
      duration = undefined;
      discontinuity = false;
    }
  }
  return { tags, entries };
}

/** Decode time of the first sample, its composition time, and the summed sample durations of a segment. */
function segmentTimes(init: Buffer, segment: Buffer, trackId: number): { dts: number; cts: number; duration: number } {
  const x = mp4boxExtract(trackId, [init, segment]);
  expect(x.samples.length).toBeGreaterThan(0);
  return { dts: x.samples[0]!.dts, cts: x.samples[0]!.cts, duration: x.samples.reduce((n, s) => n + s.duration, 0) };
}

/** track_ID of an init segment (its `tkhd`). */
function trackIdOf(init: Buffer): number {
  const at = init.indexOf('tkhd');
  const version = init[at + 4]!;
  return init.readUInt32BE(at + 8 + (version === 1 ? 16 : 8));
}

/** The `avcC` profile/compat/level or the AAC object type an init segment describes, as a codecs string. */
function codecsOfInit(init: Buffer): string {
  const avcC = init.indexOf('avcC');
  if (avcC !== -1) return `avc1.${init.subarray(avcC + 5, avcC + 8).toString('hex')}`;
  const esds = init.indexOf('esds');
  expect(esds).toBeGreaterThan(-1);
  // DecoderSpecificInfo (tag 5): its first 5 bits are the audio object type.
  const dsi = init.indexOf(Buffer.from([0x05]), esds + 12);
  let at = dsi + 1;
  while (init[at]! & 0x80) at++;
  return `mp4a.40.${init[at + 1]! >> 3}`;
}

describe('DASH and HLS of a live Smooth push', () => {
  let srv: TestServer;
  let post: RawPost;
  let round = 0;
  const url = (rel: string): string => `${srv.base}/live.isml/${rel}`;
  const ok = async (u: string): Promise<Reply> => {
    const r = await get(u);
    expect([u, r.status, r.status === 200 ? '' : r.text]).toEqual([u, 200, '']);
    return r;
  };
  const pushRounds = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) for (const f of fragmentsOfRound(round++)) await post.write(f);
  };

  beforeAll(async () => {
    srv = await startServer();
    srv.define('live.isml');
    post = new RawPost(`${srv.base}/live.isml/Streams(live)`);
    await post.write(fixture().header);
    await pushRounds(4);
    await until(async () => (await get(url('.mpd'))).status === 200);
  });

  afterAll(async () => {
    post?.destroy();
    await srv?.close();
  });

  it('the MPD is a dynamic presentation whose every $Time$ is a CMAF segment starting there, tfdt continuous, codecs from the inits', async () => {
    const r = await ok(url('.mpd'));
    expect(r.headers['content-type']).toBe('application/dash+xml');
    expect(XMLValidator.validate(r.text)).toBe(true);
    const mpd = (mpdXml.parse(r.text) as { MPD: Node }).MPD;
    expect(mpd.type).toBe('dynamic');
    expect(Date.parse(String(mpd.availabilityStartTime))).toBeLessThan(Date.now());
    // The clock the MPD names is served, at an absolute path below the point.
    const timing = (mpd.UTCTiming as Node[])[0]!;
    expect(timing.schemeIdUri).toBe('urn:mpeg:dash:utc:http-iso:2014');
    expect(timing.value).toBe('/live/live.isml/time');
    const clock = await ok(`${new URL(srv.base).origin}${String(timing.value)}`);
    expect(Math.abs(Date.parse(clock.text) - Date.now())).toBeLessThan(5000);
    expect(clock.headers['cache-control']).toBe('no-store');

    const segments = mpdSegments(mpd);
    expect([...segments.keys()].sort()).toEqual(['audio=32000', 'video=100000', 'video=50000'].sort());
    const reps = new Map<string, Record<string, string>>();
    for (const set of (mpd.Period as Node[])[0]!.AdaptationSet as Node[]) {
      for (const rep of set.Representation as Array<Record<string, string>>) reps.set(rep.id!, rep);
    }
    for (const [rep, list] of segments) {
      expect(list.length).toBeGreaterThanOrEqual(12);
      const initReply = await ok(url(`cmaf/${rep}/init.mp4`));
      const init = initReply.body;
      expect(reps.get(rep)!.codecs).toBe(codecsOfInit(init));
      // Revalidated every time, by an ETag an edge can ask with.
      expect([initReply.headers['cache-control'], initReply.headers.etag]).toEqual(['no-cache', expect.stringMatching(/^"i.+"$/)]);
      expect((await get(url(`cmaf/${rep}/init.mp4`), { 'If-None-Match': initReply.headers.etag! })).status).toBe(304);
      const trackId = trackIdOf(init);
      let next: number | undefined;
      for (const [i, s] of list.entries()) {
        // Every value an MPD carries stays exact as a double.
        expect(s.time).toBeLessThan(2n ** 53n);
        const seg = await ok(url(`cmaf/${rep}/${s.time}.m4s`));
        expect(seg.headers['cache-control']).toMatch(/immutable/);
        const t = segmentTimes(init, seg.body, trackId);
        // The earliest presentation time is $Time$ (the first audio segment starts early by the AAC priming).
        if (!(rep.startsWith('audio') && i === 0)) expect(BigInt(t.cts)).toBe(s.time);
        // The replayed rounds repeat the capture's audio, which starts 213333 ticks early (its priming), so
        // each round's audio overlaps the last by that much; the origin passes times through as they came.
        if (next !== undefined && !(rep.startsWith('audio') && t.dts === next - 213_333)) expect(t.dts).toBe(next);
        next = t.dts + t.duration;
      }
    }
  });

  it('a second poll keeps the anchor and grows the timeline; HLS sequence numbers follow the window', async () => {
    const first = (mpdXml.parse((await ok(url('.mpd'))).text) as { MPD: Node }).MPD;
    const media1 = playlist((await ok(url('cmaf/video=100000/index.m3u8'))).text);
    await pushRounds(1);
    await until(async () => (await get(url('.mpd'))).text !== '' && mpdSegments((mpdXml.parse((await get(url('.mpd'))).text) as { MPD: Node }).MPD).get('video=100000')!.length > mpdSegments(first).get('video=100000')!.length);
    const second = (mpdXml.parse((await ok(url('.mpd'))).text) as { MPD: Node }).MPD;
    expect(second.availabilityStartTime).toBe(first.availabilityStartTime);
    expect(Date.parse(String(second.publishTime))).toBeGreaterThanOrEqual(Date.parse(String(first.publishTime)));
    const a = mpdSegments(first).get('video=100000')!;
    const b = mpdSegments(second).get('video=100000')!;
    // Updates only add S at the end (this window keeps the whole event).
    expect(b.slice(0, a.length).map((s) => s.time)).toEqual(a.map((s) => s.time));

    const media2 = playlist((await ok(url('cmaf/video=100000/index.m3u8'))).text);
    const seq1 = Number(media1.tags.get('#EXT-X-MEDIA-SEQUENCE')![0]);
    const seq2 = Number(media2.tags.get('#EXT-X-MEDIA-SEQUENCE')![0]);
    for (const [i, e] of media2.entries.entries()) {
      const j = i + seq2 - seq1;
      if (j >= 0 && j < media1.entries.length) expect(e.uri).toBe(media1.entries[j]!.uri);
    }
    expect(media2.entries.length).toBeGreaterThan(media1.entries.length);
  });

  it('the HLS master lists every video bitrate with codecs, resolution and the audio group; media playlists are valid', async () => {
    const r = await ok(url('.m3u8'));
    expect(r.headers['content-type']).toBe('application/vnd.apple.mpegurl');
    // Playlists are kept for half a segment at most (1 s fragments here: revalidated), like the Smooth manifest.
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers.etag).toBeDefined();
    const master = playlist(r.text);
    expect(master.tags.get('#EXT-X-VERSION')).toEqual(['7']);
    const variants = master.tags.get('#EXT-X-STREAM-INF')!;
    expect(variants).toHaveLength(2);
    for (const v of variants) {
      expect(v).toMatch(/CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"/);
      expect(v).toMatch(/RESOLUTION=\d+x\d+/);
      expect(v).toMatch(/AUDIO="audio"/);
    }
    expect(master.tags.get('#EXT-X-MEDIA')![0]).toMatch(/TYPE=AUDIO,GROUP-ID="audio"/);
    const uris = [...master.entries.map((e) => e.uri), ...master.tags.get('#EXT-X-MEDIA')!.map((m) => /URI="([^"]+)"/.exec(m)![1]!)];
    for (const uri of uris) {
      const media = playlist((await ok(url(uri))).text);
      const target = Number(media.tags.get('#EXT-X-TARGETDURATION')![0]);
      for (const e of media.entries) expect(Math.round(e.duration)).toBeLessThanOrEqual(target);
      expect(media.tags.get('#EXT-X-MAP')).toEqual(['URI="init.mp4"']);
      expect(media.tags.has('#EXT-X-PROGRAM-DATE-TIME')).toBe(true);
      expect(media.tags.has('#EXT-X-ENDLIST')).toBe(false);
      const dir = uri.slice(0, uri.lastIndexOf('/') + 1);
      const last = media.entries[media.entries.length - 1]!;
      expect((await get(url(dir + last.uri))).status).toBe(200);
    }
  });

  it('IIS and Azure spellings give the same documents; a segment not there yet is 404, one never there 404, one gone 410, all no-store', async () => {
    const mpd = (await ok(url('.mpd'))).text;
    expect((await ok(url('Manifest(format=mpd-time-csf)'))).text).toBe(mpd);
    expect((await ok(url('Manifest(format=mpd-time-cmaf)'))).text).toBe(mpd);
    const m3u8 = (await ok(url('.m3u8'))).text;
    expect((await ok(url('Manifest(format=m3u8-aapl)'))).text).toBe(m3u8);
    expect((await ok(url('Manifest(format=m3u8-aapl).m3u8'))).text).toBe(m3u8);
    expect((await ok(url('Manifest(format=m3u8-cmaf)'))).text).toBe(m3u8);
    const future = await get(url('cmaf/video=100000/99999999999999.m4s'));
    expect([future.status, future.headers['cache-control']]).toEqual([404, 'no-store']);
    const listed = mpdSegments((mpdXml.parse((await ok(url('.mpd'))).text) as { MPD: Node }).MPD).get('video=100000')!;
    const odd = await get(url(`cmaf/video=100000/${listed[1]!.time + 1n}.m4s`));
    expect([odd.status, odd.headers['cache-control']]).toEqual([404, 'no-store']);
    // Before the oldest segment the point holds: gone for good.
    const gone = await get(url(`cmaf/video=100000/${listed[0]!.time - 1n}.m4s`));
    expect([gone.status, gone.headers['cache-control']]).toEqual([410, 'no-store']);
    expect((await get(url('cmaf/video=12345/init.mp4'))).status).toBe(404);
    expect((await get(url('Manifest(format=f4m)'))).status).toBe(404);
  });

  it('the anchor is saved with the point state', async () => {
    const state = await until(() => {
      try {
        const s = JSON.parse(readFileSync(path.join(srv.root, '.live-smooth-state.json'), 'utf8')) as {
          anchors?: Record<string, { availabilityStart: number; start: string }>;
        };
        return s.anchors?.['live.isml'];
      } catch {
        return undefined;
      }
    });
    const mpd = (mpdXml.parse((await ok(url('.mpd'))).text) as { MPD: Node }).MPD;
    // The live MPD starts at the session's first fragment, `start` seconds after output time 0.
    expect(new Date(state.availabilityStart + Number(state.start) * 1000).toISOString()).toBe(mpd.availabilityStartTime);
    const video = ((mpd.Period as Node[])[0]!.AdaptationSet as Node[]).find((a) => a.contentType === 'video')!;
    expect((video.SegmentTemplate as Node).presentationTimeOffset).toBe(String(BigInt(state.start) * 10_000_000n));
  });

  it('after end of stream the MPD is static (on demand, from 0) and every playlist ends', async () => {
    await post.write(fixture().mfra);
    await post.end();
    await until(async () => (mpdXml.parse((await get(url('.mpd'))).text) as { MPD: Node }).MPD.type === 'static');
    const mpd = (mpdXml.parse((await ok(url('.mpd'))).text) as { MPD: Node }).MPD;
    expect(mpd.mediaPresentationDuration).toMatch(/^PT\d+(\.\d+)?S$/);
    expect(mpd.availabilityStartTime).toBeUndefined();
    const sets = (mpd.Period as Node[])[0]!.AdaptationSet as Node[];
    for (const set of sets) {
      const template = set.SegmentTemplate as Node;
      const first = ((template.SegmentTimeline as Node).S as Array<Record<string, string>>)[0]!;
      expect(BigInt(String(template.presentationTimeOffset))).toBeLessThanOrEqual(BigInt(first.t!));
    }
    const media = playlist((await ok(url('cmaf/audio=32000/index.m3u8'))).text);
    expect(media.tags.has('#EXT-X-ENDLIST')).toBe(true);
  });
});

describe('the formats setting', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startServer({ formats: 'smooth' });
    srv.define('hls.isml', { formats: 'm3u8-aapl' });
    srv.define('none.isml');
    for (const name of ['hls', 'none']) {
      const post = new RawPost(`${srv.base}/${name}.isml/Streams(s)`);
      await post.write(Buffer.concat([fixture().header, ...fixture().fragments]));
      await post.end();
    }
  });

  afterAll(async () => {
    await srv?.close();
  });

  it('a point whose .isml names m3u8-aapl offers HLS and not DASH; the site default `smooth` offers neither', async () => {
    expect((await get(`${srv.base}/hls.isml/.m3u8`)).status).toBe(200);
    const mpd = await get(`${srv.base}/hls.isml/.mpd`);
    expect([mpd.status, mpd.text]).toEqual([404, expect.stringContaining('does not offer DASH')]);
    expect((await get(`${srv.base}/none.isml/.m3u8`)).status).toBe(404);
    expect((await get(`${srv.base}/none.isml/cmaf/video=100000/init.mp4`)).status).toBe(404);
    expect((await get(`${srv.base}/none.isml/Manifest`)).status).toBe(200);
  });
});

describe('Date headers', () => {
  // Five years ahead of the real clock: a Date header Node wrote from its own clock would show.
  const AHEAD = 5 * 365 * 86_400_000;
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startServer({ clock: { now: () => Date.now() + AHEAD } });
    srv.define('clock.isml');
    const post = new RawPost(`${srv.base}/clock.isml/Streams(s)`);
    await post.write(fixture().header);
    for (let i = 0; i < 4; i++) for (const f of fragmentsOfRound(i)) await post.write(f);
    await until(async () => (await get(`${srv.base}/clock.isml/.mpd`)).status === 200);
  });

  afterAll(async () => {
    await srv?.close();
  });

  it('every response of a point, the MPD, playlists, segments, the time endpoint and errors, is dated by the origin clock', async () => {
    const mpd = await get(`${srv.base}/clock.isml/.mpd`);
    const segment = /<S t="(\d+)"/.exec(mpd.text)![1];
    const urls = [
      '.mpd', '.m3u8', 'time', 'cmaf/video=100000/init.mp4', `cmaf/video=100000/${segment}.m4s`, 'cmaf/video=100000/index.m3u8',
      'Manifest', 'cmaf/video=100000/9.m4s', 'QualityLevels(1)/Fragments(video=0)',
    ];
    for (const rel of urls) {
      const before = Date.now() + AHEAD;
      const r = await get(`${srv.base}/clock.isml/${rel}`);
      const after = Date.now() + AHEAD;
      const date = Date.parse(String(r.headers.date));
      expect([rel, date >= Math.floor(before / 1000) * 1000 && date <= after]).toEqual([rel, true]);
      if (rel === 'time') expect(Date.parse(r.text) - date).toBeLessThan(1000 + (after - before));
    }
    // The MPD's own times are from the same clock.
    const published = Date.parse(/publishTime="([^"]+)"/.exec(mpd.text)![1]!);
    expect(Math.abs(published - (Date.now() + AHEAD))).toBeLessThan(60_000);
  });
});

describe('the anchor over a process restart', () => {
  it('an encoder that goes on with its times keeps the availabilityStartTime (the saved anchor fits its fragments)', async () => {
    const ast = async (srv: TestServer): Promise<string> => {
      const r = await until(async () => {
        const m = await get(`${srv.base}/ch.isml/.mpd`);
        return m.status === 200 && /<S /.test(m.text) ? m : undefined;
      });
      return String((mpdXml.parse(r.text) as { MPD: Node }).MPD.availabilityStartTime);
    };
    const push = async (srv: TestServer, rounds: number[]): Promise<RawPost> => {
      const post = new RawPost(`${srv.base}/ch.isml/Streams(ch)`);
      await post.write(fixture().header);
      for (const r of rounds) for (const f of fragmentsOfRound(r)) await post.write(f);
      return post;
    };
    let srv = await startServer({ sourceLostTimeout: 0 });
    srv.define('ch.isml');
    let post = await push(srv, [0, 1]);
    const before = await ast(srv);
    // The state file is written (coalesced) after the anchor event.
    await until(() => {
      try {
        return /"anchors": \{\s+"ch\.isml"/.test(readFileSync(path.join(srv.root, '.live-smooth-state.json'), 'utf8'));
      } catch {
        return false;
      }
    });
    post.destroy();
    const root = srv.root;
    await srv.close(true);

    // The encoder goes on (its next round), against a new process on the same root.
    srv = await startServer({ sourceLostTimeout: 0 }, '/live', root);
    post = await push(srv, [2, 3]);
    expect(await ast(srv)).toBe(before);
    post.destroy();
    await srv.close();
  });
});
