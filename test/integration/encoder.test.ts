/**
 * The simulated encoder end to end: it loops a 6 s `.ismv` (made by ffmpeg: 2 H.264 bitrates with 2 s
 * GOPs + AAC) into `liveSmooth` at UTC-based times (beyond 2^53), in one POST and in one POST per track,
 * while GStreamer's mssdemux plays each point across loop seams: every decoded video frame and audio
 * buffer must follow the previous one without a gap or a jump. A third push has its connection cut
 * mid-fragment: after the reconnect (identical header, last two fragments per track resent) the manifest
 * lists every fragment exactly once.
 *
 * The two GStreamer runs overlap (started in beforeAll) to keep the file near 30 s.
 */
import { ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { XMLParser } from 'fast-xml-parser';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import { SimulatedEncoder } from '../../lib/encoder';
import { parseTfxd, UUID_TFXD } from '../../lib/mp4/boxes';
import { children as boxesIn, findChild } from '../../lib/mp4/reader';
import { GstRun, ptsSummary, runGst } from '../helpers/gst';
import { isml, liveServer } from '../helpers/server';
import { ffmpegPath, gstLaunchPath, withTool } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
/** Content length (one loop), seconds; GStreamer plays for GST_SECONDS, crossing at least one seam. */
const LOOP = 6;
const GST_SECONDS = 16;
/** Bytes of the first POST to `cut.isml` after which the server drops its connection (mid loop 0). */
const CUT_BYTES = 120_000;

function withTools(...tools: Array<[string, string | undefined]>): jest.It {
  const missing = tools.find(([, p]) => !p);
  return missing ? withTool(missing[0], undefined) : it;
}

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

interface Entry {
  t: bigint;
  d: bigint;
}
interface Stream {
  type: string;
  name: string;
  bitrates: number[];
  entries: Entry[];
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  isArray: (n) => ['StreamIndex', 'QualityLevel', 'c'].includes(n),
});

/** Every StreamIndex with its expanded timeline (exact bigint times). */
function streams(manifest: string): Stream[] {
  const doc = xml.parse(manifest) as { SmoothStreamingMedia: { StreamIndex?: Array<Record<string, unknown>> } };
  return (doc.SmoothStreamingMedia.StreamIndex ?? []).map((s) => {
    const entries: Entry[] = [];
    let next = 0n;
    for (const c of (s.c as Array<{ t?: string; d: string; r?: string }> | undefined) ?? []) {
      let t = c.t !== undefined ? BigInt(c.t) : next;
      for (let i = 0; i < Number(c.r ?? 1); i++) {
        entries.push({ t, d: BigInt(c.d) });
        t += BigInt(c.d);
      }
      next = t;
    }
    const levels = s.QualityLevel as Array<{ Bitrate: string }>;
    return { type: s.Type as string, name: s.Name as string, bitrates: levels.map((l) => Number(l.Bitrate)), entries };
  });
}

/** Steps where a fragment does not start exactly where the previous one ended. */
function discontinuities(entries: Entry[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < entries.length; i++) {
    const end = entries[i - 1]!.t + entries[i - 1]!.d;
    if (entries[i]!.t !== end) out.push(`#${i}: ${entries[i]!.t} after end ${end}`);
  }
  return out;
}

async function manifest(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.text();
}

/** Waits until every StreamIndex lists at least `min` fragments. */
async function waitForFragments(url: string, min: number, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const text = await manifest(url).catch(() => '');
    if (text) {
      const s = streams(text);
      if (s.length >= 2 && s.every((x) => x.entries.length >= min)) return;
    }
    if (Date.now() > until) throw new Error(`${url} did not list ${min} fragments per stream in ${ms} ms:\n${text}`);
    await sleep(250);
  }
}

/** Makes the 6 s clip: 320x180 and 160x90 H.264 with 2 s GOPs, AAC stereo; ffmpeg's `-f ismv` file. */
function makeClip(ffmpeg: string, file: string): void {
  // prettier-ignore
  execFileSync(ffmpeg, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', '[0:v]split=2[a][b];[b]scale=160:90[b2]', '-map', '[a]', '-map', '[b2]', '-map', '1:a',
    '-t', String(LOOP), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-b:v:0', '200k', '-b:v:1', '80k',
    '-c:a', 'aac', '-b:a', '64k', '-ac', '2', '-movflags', 'frag_keyframe', '-f', 'ismv', file,
  ]);
}

describe('simulated encoder → liveSmooth → GStreamer', () => {
  let root: string | undefined;
  let clip = '';
  let handler: LiveSmoothHandler | undefined;
  let server: http.Server | undefined;
  let base = '';
  /** Stream POSTs (not probes) that reached cut.isml. */
  let cutPosts = 0;
  const encoders: SimulatedEncoder[] = [];
  const children = new Set<ChildProcess>();
  const runs: Record<'single' | 'perTrack', Promise<GstRun> | undefined> = { single: undefined, perTrack: undefined };

  beforeAll(async () => {
    if (!FFMPEG) return;
    root = mkdtempSync(path.join(tmpdir(), 'live-smooth-encoder-'));
    clip = path.join(root, 'clip.ismv');
    makeClip(FFMPEG, clip);
    for (const name of ['single', 'pertrack', 'cut']) writeFileSync(path.join(root, `${name}.isml`), isml());
    handler = liveSmooth(root);
    const app = express();
    app.use((req, _res, next) => {
      // The first stream POST to cut.isml (not the empty probe before it) loses its connection after
      // CUT_BYTES, mid-fragment.
      const probe = req.headers['content-length'] === '0';
      if (req.method === 'POST' && !probe && req.url.startsWith('/live/cut.isml/') && ++cutPosts === 1) {
        let bytes = 0;
        req.socket.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > CUT_BYTES) req.socket.destroy();
        });
      }
      next();
    });
    app.use('/live', handler);
    server = liveServer(app);
    await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/live`;
    if (!GST) return;
    // Both pushes start 4 s ahead (backlog) so GStreamer finds fragments at once, at UTC-based times.
    const common = { files: [clip], start: 'now' as const, backlog: 4 };
    encoders.push(await SimulatedEncoder.open({ ...common, url: `${base}/single.isml` }));
    encoders.push(await SimulatedEncoder.open({ ...common, url: `${base}/pertrack.isml`, perTrack: true }));
    for (const e of encoders) void e.start();
    await Promise.all([waitForFragments(`${base}/single.isml/Manifest`, 2), waitForFragments(`${base}/pertrack.isml/Manifest`, 2)]);
    runs.single = runGst(GST, `${base}/single.isml/Manifest`, GST_SECONDS, children, DEBUG);
    runs.perTrack = runGst(GST, `${base}/pertrack.isml/Manifest`, GST_SECONDS, children, DEBUG);
    for (const r of Object.values(runs)) r?.catch(() => undefined);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(Object.values(runs).map((r) => r?.catch(() => undefined)));
    await Promise.all(encoders.map((e) => e.stop()));
    handler?.origin.close();
    server?.closeAllConnections();
    if (server) await new Promise<void>((ok) => server!.close(() => ok()));
    if (root) rmSync(root, { recursive: true, force: true });
  }, 30_000);

  /** GStreamer decoded ~GST_SECONDS of a point across at least one seam, and its manifest is continuous. */
  async function judge(run: Promise<GstRun> | undefined, point: string): Promise<void> {
    if (!run) throw new Error('GStreamer was not started (see beforeAll)');
    const r = await run;
    const video = ptsSummary(r.video);
    const audio = ptsSummary(r.audio);
    const summary = `${point}: exit ${r.code}, video ${JSON.stringify(video)}, audio ${JSON.stringify(audio)}`;
    console.log(`GStreamer ${summary}`);
    const context = `${summary}\n${r.output.slice(-4000)}`;
    expect({ errors: r.errors, context }).toEqual({ errors: [], context });
    expect({ code: r.code, context }).toEqual({ code: 124, context }); // still playing when stopped
    // Over a loop's length and more, so at least one seam was decoded…
    expect(video.span).toBeGreaterThan(LOOP + 2);
    expect(audio.span).toBeGreaterThan(LOOP + 2);
    expect(video.distinct).toBeGreaterThanOrEqual(Math.floor(video.span * 25 * 0.9));
    // …with no gap (a missing fragment is 2 s; one missed log line is 0.08 s) and no step back.
    expect(video.maxGap).toBeLessThan(0.15);
    expect(audio.maxGap).toBeLessThan(0.15);
    expect(video.backwards).toBe(0);
    expect(audio.backwards).toBe(0);
    // The manifest: one continuous timeline per StreamIndex over several loops, at times beyond 2^53.
    const list = streams(await manifest(`${base}/${point}/Manifest`));
    expect(list.map((s) => [s.type, s.bitrates.length])).toEqual([['video', 2], ['audio', 1]]);
    for (const s of list) {
      expect({ stream: s.name, gaps: discontinuities(s.entries) }).toEqual({ stream: s.name, gaps: [] });
      expect(s.entries.length).toBeGreaterThan((2 * LOOP) / 2);
      expect(s.entries[0]!.t > 2n ** 53n).toBe(true);
    }
  }

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    'one POST for all tracks: GStreamer decodes across loop seams with no gap or jump',
    () => judge(runs.single, 'single.isml'),
    60_000,
  );

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    'one POST per track: GStreamer decodes across loop seams with no gap or jump',
    () => judge(runs.perTrack, 'pertrack.isml'),
    60_000,
  );

  withTool('ffmpeg', FFMPEG)(
    'a connection cut mid-push is survived: every fragment listed once, none missing',
    async () => {
      const start = 17_640_720_000_000_001n;
      const encoder = await SimulatedEncoder.open({
        url: `${base}/cut.isml`,
        files: [clip],
        loops: 2,
        start,
        speed: 4,
        reconnect: { minDelay: 100 },
      });
      encoders.push(encoder);
      await encoder.start(); // ends with end of stream: the held-back tail is published
      expect(cutPosts).toBe(2);
      expect(encoder.status().reconnects).toBe(1);
      const list = streams(await manifest(`${base}/cut.isml/Manifest`));
      const perLoop = encoder.source.tracks[0]!.fragments.length;
      for (const s of list) {
        expect({ stream: s.name, gaps: discontinuities(s.entries) }).toEqual({ stream: s.name, gaps: [] });
        expect(s.entries).toHaveLength(2 * perLoop);
      }
      const video = list.find((s) => s.type === 'video')!;
      expect(video.entries[0]!.t).toBe(start);
      expect(video.entries[perLoop]!.t).toBe(start + BigInt(LOOP) * 10_000_000n);
      // Every listed time is served by every quality level, with that time in its tfxd.
      for (const s of list) {
        for (const bitrate of s.bitrates) {
          for (const e of s.entries) {
            const res = await fetch(`${base}/cut.isml/QualityLevels(${bitrate})/Fragments(${s.name}=${e.t})`);
            expect({ url: res.url, status: res.status }).toEqual({ url: res.url, status: 200 });
            const moof = boxesIn(Buffer.from(await res.arrayBuffer())).next().value!;
            const tfxd = parseTfxd(findChild(findChild(moof, 'traf')!, 'uuid', UUID_TFXD)!);
            expect(tfxd.time).toBe(e.t);
          }
        }
      }
    },
    30_000,
  );
});
