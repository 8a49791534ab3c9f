/**
 * On-demand Smooth Streaming (`.ism`) served by the same `liveSmooth()` handler as live points: a
 * 12 s presentation made by ffmpeg (`-f ismv`: 2 H.264 bitrates with aligned 2 s GOPs in one `.ismv`,
 * AAC in an `.isma`) and a hand-written `.ism` naming its tracks. The manifest is built from the files
 * when there is no `.ismc` and served as the file's bytes when there is one; every fragment of every
 * QualityLevel carries a tfxd at its listed time, no tfrf, and the file's own samples; HTTP caching,
 * errors and path checks; and GStreamer's mssdemux plays the presentation from start to end.
 */
import { ChildProcess, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import { UUID_TFRF, UUID_TFXD, parseTfhd, parseTfxd } from '../../lib/mp4/boxes';
import { Box, children, childrenOf, findChild } from '../../lib/mp4/reader';
import { ptsSummary, runGst } from '../helpers/gst';
import { Reply, get, parseManifest, request } from '../helpers/raw-ingest';
import { liveServer } from '../helpers/server';
import { ffmpegPath, gstLaunchPath, withTool, withTools } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
/** Presentation length, seconds. */
const SECONDS = 12;
const VIDEO_BITRATES = [400_000, 150_000];

/**
 * ffmpeg's `-f ismv` files (fragmented by the muxer itself, cut at each 2 s key frame): both video
 * bitrates in `ch1.ismv` (track IDs 1, 2), AAC in `ch1.isma`.
 */
function makeMedia(ffmpeg: string, dir: string): void {
  // prettier-ignore
  execFileSync(ffmpeg, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', '[0:v]split=2[a][b];[b]scale=160:90[b2]',
    '-map', '[a]', '-map', '[b2]', '-t', String(SECONDS), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-b:v:0', '400k', '-b:v:1', '150k',
    '-f', 'ismv', path.join(dir, 'ch1.ismv'),
    // Audio alone has no key frames to cut at: 2 s fragments by duration.
    '-map', '1:a', '-t', String(SECONDS), '-c:a', 'aac', '-b:a', '64k', '-ac', '2', '-frag_duration', '2000000',
    '-f', 'ismv', path.join(dir, 'ch1.isma'),
  ]);
}

/** An IIS-style server manifest; `src` values as given (relative to the `.ism`). */
function ism(o: { video?: string; audio?: string; ismc?: string } = {}): string {
  const video = o.video ?? 'ch1.ismv';
  const meta = o.ismc ? `    <meta name="clientManifestRelativePath" content="${o.ismc}" />\n` : '';
  return `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
  <head>
${meta}    <meta name="formats" content="" />
  </head>
  <body>
    <switch>
      <video src="${video}" systemBitrate="${VIDEO_BITRATES[0]}"><param name="trackID" value="1" valuetype="data" /></video>
      <video src="${video}" systemBitrate="${VIDEO_BITRATES[1]}"><param name="trackID" value="2" valuetype="data" /></video>
      <audio src="${o.audio ?? 'ch1.isma'}" systemBitrate="64000"><param name="trackID" value="1" valuetype="data" /></audio>
    </switch>
  </body>
</smil>
`;
}

/** Per track_ID, the file's fragments in order: tfxd time and the whole mdat box. */
function fileFragments(file: string): Map<number, Array<{ time: bigint; mdat: Buffer }>> {
  const out = new Map<number, Array<{ time: bigint; mdat: Buffer }>>();
  let pending: { trackId: number; time: bigint } | undefined;
  for (const b of children(readFileSync(file))) {
    if (b.type === 'moof') {
      const traf = findChild(b, 'traf')!;
      pending = { trackId: parseTfhd(findChild(traf, 'tfhd')!).trackId, time: parseTfxd(findChild(traf, 'uuid', UUID_TFXD)!).time };
    } else if (b.type === 'mdat' && pending) {
      let list = out.get(pending.trackId);
      if (!list) out.set(pending.trackId, (list = []));
      list.push({ time: pending.time, mdat: Buffer.from(b.data) });
      pending = undefined;
    }
  }
  return out;
}

/** A fragment response's parts: the moof's traf and the mdat box. */
function responseParts(body: Buffer): { moof: Box; traf: Box; mdat: Box; types: string[] } {
  const boxes = [...children(body)];
  const moof = boxes.find((b) => b.type === 'moof')!;
  return { moof, traf: findChild(moof, 'traf')!, mdat: boxes.find((b) => b.type === 'mdat')!, types: boxes.map((b) => b.type) };
}

describe('on-demand Smooth Streaming (.ism)', () => {
  let outer = '';
  let root = '';
  let handler: LiveSmoothHandler | undefined;
  let server: http.Server | undefined;
  let base = '';
  /** URLs the handler passed on to the host. */
  const hostHits: string[] = [];
  const procs = new Set<ChildProcess>();

  beforeAll(async () => {
    if (!FFMPEG) return;
    outer = mkdtempSync(path.join(tmpdir(), 'live-smooth-ondemand-'));
    root = path.join(outer, 'media');
    const vod = path.join(root, 'vod');
    mkdirSync(vod, { recursive: true });
    makeMedia(FFMPEG, vod);
    writeFileSync(path.join(vod, 'ch1.ism'), ism());
    writeFileSync(path.join(vod, 'withc.ism'), ism({ ismc: 'custom.ismc' }));
    // A media file outside the root: an .ism may not reach it, however it spells the path.
    copyFileSync(path.join(vod, 'ch1.isma'), path.join(outer, 'outside.isma'));
    writeFileSync(path.join(vod, 'escape.ism'), ism({ audio: '../../outside.isma' }));
    writeFileSync(path.join(vod, 'absolute.ism'), ism({ audio: path.join(outer, 'outside.isma') }));
    writeFileSync(path.join(vod, 'broken.ism'), ism({ video: 'missing.ismv' }));
    handler = liveSmooth(root, { stateFile: false });
    const app = express();
    app.use('/live', handler);
    app.use((req, res) => {
      hostHits.push(req.originalUrl);
      res.status(404).send('host');
    });
    server = liveServer(app);
    await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/live`;
  }, 60_000);

  afterAll(async () => {
    for (const c of procs) c.kill('SIGKILL');
    handler?.origin.close();
    await handler?.onDemand.close();
    server?.closeAllConnections();
    if (server) await new Promise<void>((ok) => server!.close(() => ok()));
    if (outer) rmSync(outer, { recursive: true, force: true });
  });

  const manifestOf = async (name: string): Promise<Reply> => {
    const r = await get(`${base}/vod/${name}/Manifest`);
    expect({ status: r.status, text: r.status === 200 ? '' : r.text }).toEqual({ status: 200, text: '' });
    return r;
  };

  withTool('ffmpeg', FFMPEG)('the Manifest is built from the media files when there is no .ismc', async () => {
    const r = await manifestOf('ch1.ism');
    expect(r.headers['content-type']).toBe('application/vnd.ms-sstr+xml; charset=utf-8');
    expect(XMLValidator.validate(r.text)).toBe(true);
    const { root: attrs, streams } = parseManifest(r.text);
    expect(attrs.IsLive).toBeUndefined();
    expect(attrs.DVRWindowLength).toBeUndefined();
    expect(attrs.LookAheadFragmentCount).toBeUndefined();
    // 12 s give or take an AAC frame (the audio track's end decides).
    expect(Math.abs(Number(attrs.Duration) - SECONDS * 1e7)).toBeLessThan(0.05 * 1e7);
    expect(streams.map((s) => [s.type, s.name, s.bitrates])).toEqual([
      ['video', 'video', [...VIDEO_BITRATES].sort((a, b) => a - b)],
      ['audio', 'audio', [64000]],
    ]);
    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => ['StreamIndex', 'c'].includes(n) });
    const raw = xml.parse(r.text) as { SmoothStreamingMedia: { StreamIndex: Array<{ c: Array<{ d?: string }> }> } };
    for (const s of streams) {
      expect(s.fragments.length).toBe(SECONDS / 2);
      // From 0 to the end without a gap (the audio's primed first fragment is listed from 0).
      expect(s.fragments[0]!.t).toBe(0n);
      for (let i = 1; i < s.fragments.length; i++) expect(s.fragments[i]!.t).toBe(s.fragments[i - 1]!.t + s.fragments[i - 1]!.d);
    }
    for (const si of raw.SmoothStreamingMedia.StreamIndex) for (const c of si.c) expect(c.d).toMatch(/^\d+$/);
  });

  withTool('ffmpeg', FFMPEG)("every fragment of every QualityLevel: tfxd at its time, no tfrf, the file's samples", async () => {
    const { streams } = parseManifest((await manifestOf('ch1.ism')).text);
    const files = { video: fileFragments(path.join(root, 'vod', 'ch1.ismv')), audio: fileFragments(path.join(root, 'vod', 'ch1.isma')) };
    let checked = 0;
    for (const s of streams) {
      for (const bitrate of s.bitrates) {
        // QualityLevel → track_ID as the .ism names it.
        const trackId = s.type === 'audio' ? 1 : VIDEO_BITRATES.indexOf(bitrate) + 1;
        const expected = files[s.type as 'video' | 'audio'].get(trackId)!;
        expect(expected.length).toBe(s.fragments.length);
        for (const [i, f] of s.fragments.entries()) {
          const r = await get(`${base}/vod/ch1.ism/QualityLevels(${bitrate})/Fragments(${s.name}=${f.t})`);
          expect({ url: `${bitrate}/${f.t}`, status: r.status }).toEqual({ url: `${bitrate}/${f.t}`, status: 200 });
          expect(r.headers['content-type']).toBe(s.type === 'video' ? 'video/mp4' : 'audio/mp4');
          expect(Number(r.headers['content-length'])).toBe(r.body.length);
          const { moof, traf, mdat, types } = responseParts(r.body);
          expect(types).toEqual(['moof', 'mdat']);
          expect(parseTfxd(findChild(traf, 'uuid', UUID_TFXD)!)).toMatchObject({ time: f.t, duration: f.d });
          expect(findChild(traf, 'uuid', UUID_TFRF)).toBeUndefined();
          expect(parseTfhd(findChild(traf, 'tfhd')!).trackId).toBe(trackId);
          // The samples are the file's bytes, and the trun still points at them.
          expect(Buffer.compare(mdat.data, expected[i]!.mdat)).toBe(0);
          const trun = [...childrenOf(traf)].find((c) => c.type === 'trun')!;
          expect(trun.data.readInt32BE(trun.headerSize + 8)).toBe(moof.data.length + 8);
          checked++;
        }
      }
    }
    expect(checked).toBe(3 * (SECONDS / 2));
  });

  withTool('ffmpeg', FFMPEG)('an .ismc beside the .ism is served as its bytes, and its times resolve', async () => {
    const built = (await manifestOf('ch1.ism')).text;
    const ismc = built.replace('<SmoothStreamingMedia', '<!-- written by hand -->\n<SmoothStreamingMedia');
    writeFileSync(path.join(root, 'vod', 'custom.ismc'), ismc);
    const r = await manifestOf('withc.ism');
    expect(r.text).toBe(ismc);
    const { streams } = parseManifest(r.text);
    const last = streams[1]!.fragments[streams[1]!.fragments.length - 1]!;
    const f = await get(`${base}/vod/withc.ism/QualityLevels(64000)/Fragments(audio=${last.t})`);
    expect(f.status).toBe(200);
  });

  withTool('ffmpeg', FFMPEG)('HEAD, ETag and 304, long-lived Cache-Control and CORS', async () => {
    const m = await manifestOf('ch1.ism');
    expect(m.headers['cache-control']).toBe('public, max-age=86400');
    expect(m.headers['access-control-allow-origin']).toBe('*');
    expect(m.headers.etag).toMatch(/^"m[0-9a-f]+"$/);
    const head = await get(`${base}/vod/ch1.ism/Manifest`, {}, 'HEAD');
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(m.body.length), 0]);
    const again = await get(`${base}/vod/ch1.ism/Manifest`, { 'If-None-Match': m.headers.etag! });
    expect([again.status, again.body.length, again.headers.etag]).toEqual([304, 0, m.headers.etag]);

    const url = `${base}/vod/ch1.ism/QualityLevels(150000)/Fragments(video=20000000)`;
    const f = await get(url);
    expect(f.status).toBe(200);
    expect(f.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(f.headers['access-control-allow-origin']).toBe('*');
    expect(f.headers['last-modified']).toBeDefined();
    const fHead = await get(url, {}, 'HEAD');
    const fHeadSeen = [fHead.status, fHead.headers['content-length'], fHead.headers.etag, fHead.body.length];
    expect(fHeadSeen).toEqual([200, String(f.body.length), f.headers.etag, 0]);
    const f304 = await get(url, { 'If-None-Match': f.headers.etag! });
    expect([f304.status, f304.body.length]).toEqual([304, 0]);
    const other = await get(`${base}/vod/ch1.ism/QualityLevels(400000)/Fragments(video=20000000)`);
    expect(other.headers.etag).not.toBe(f.headers.etag);
    const post = await request(base, '/live/vod/ch1.ism/Manifest', { method: 'POST', body: 'x' });
    expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD']);
  });

  withTool('ffmpeg', FFMPEG)('unknown time, bitrate or track: 404; bad URLs: 400; files outside the root: 500; no .ism: next()', async () => {
    const frag = (q: string, f: string): Promise<Reply> => get(`${base}/vod/ch1.ism/QualityLevels(${q})/Fragments(${f})`);
    const cases: Array<[Reply, number, RegExp]> = [
      [await frag('150000', 'video=20000001'), 404, /no fragment of video at 20000001/],
      [await frag('999', 'video=0'), 404, /no quality level 999 for video/],
      [await frag('150000', 'text=0'), 404, /no track named text/],
      [await frag('150000,lang=en', 'video=0'), 404, /no quality level/],
      [await frag('x', 'video=0'), 400, /bitrate/],
      [await frag('150000', 'video=abc'), 400, /Fragments\(\) must be/],
      [await get(`${base}/vod/ch1.ism/QualityLevels(150000)/FragmentInfo(video=0)`), 404, /not served for on-demand/],
      [await get(`${base}/vod/ch1.ism/.mpd`), 404, /not served for on-demand/],
      [await request(base, '/live/vod/..%2F..%2Fsecret.ism/Manifest'), 400, /path segment not allowed/],
      [await request(base, '/live/vod/../../outside.ism/Manifest'), 400, /path segment not allowed/],
      [
        await get(`${base}/vod/escape.ism/Manifest`),
        500,
        /^on-demand presentation vod\/escape\.ism: media file \.\.\/\.\.\/outside\.isma lies outside the media root/,
      ],
      [await get(`${base}/vod/absolute.ism/Manifest`), 500, /lies outside the media root/],
      [await get(`${base}/vod/broken.ism/Manifest`), 500, /vod\/missing\.ismv: cannot open/],
    ];
    for (const [r, status, reason] of cases) {
      expect({ status: r.status, text: r.text }).toEqual({ status, text: expect.stringMatching(reason) });
      expect(r.text).not.toContain(outer);
    }
    hostHits.length = 0;
    const missing = await get(`${base}/vod/nothing.ism/Manifest`);
    expect([missing.status, missing.text, hostHits]).toEqual([404, 'host', ['/live/vod/nothing.ism/Manifest']]);
    // The .ism file itself is not a resource of the handler (the host may serve it).
    const own = await get(`${base}/vod/ch1.ism`);
    expect(own.text).toBe('host');
  });

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    'GStreamer mssdemux plays the presentation from start to end',
    async () => {
      const r = await runGst(GST!, `${base}/vod/ch1.ism/Manifest`, SECONDS + 25, procs, DEBUG);
      const video = ptsSummary(r.video);
      const audio = ptsSummary(r.audio);
      const summary = `exit ${r.code}, video ${JSON.stringify(video)}, audio ${JSON.stringify(audio)}`;
      console.log(`GStreamer on demand: ${summary}`);
      const context = `${summary}\n${r.output.slice(-4000)}`;
      expect({ errors: r.errors, context }).toEqual({ errors: [], context });
      // It reached the end by itself (EOS), not the timeout.
      expect({ code: r.code, context }).toEqual({ code: 0, context });
      expect(video.span).toBeGreaterThan(SECONDS - 0.5);
      expect(audio.span).toBeGreaterThan(SECONDS - 0.5);
      expect(Math.min(...r.video)).toBeLessThan(0.1);
      expect(video.maxGap).toBeLessThan(1);
      expect(audio.maxGap).toBeLessThan(1);
      expect(video.backwards).toBe(0);
      expect(audio.backwards).toBe(0);
    },
    60_000,
  );
});
