/**
 * The live path end to end: a real ffmpeg pushes 3 H.264 bitrates + AAC into an Express app using the
 * middleware, in one POST and then one POST per track; the manifest and every listed fragment are
 * checked against what the encoder sent.
 */
import { XMLParser } from 'fast-xml-parser';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isIngest, liveSmooth, SmoothIngestParser } from '../../lib';
import { UUID_TFRF, UUID_TFXD, parseTfrf, parseTfxd } from '../../lib/mp4/boxes';
import { children, findChild } from '../../lib/mp4/reader';
import { push } from '../helpers/ffmpeg';
import { isml, liveServer } from '../helpers/server';
import { ffmpegPath, npmFfmpegPath, withTool } from '../helpers/tools';

const ffmpeg = ffmpegPath();
const SECONDS = 21;

interface Level {
  Index: string;
  Bitrate: string;
  FourCC: string;
  CodecPrivateData: string;
}
interface Chunk {
  t?: string;
  d: string;
  r?: string;
}
interface StreamIndex {
  Type: string;
  Name: string;
  Url: string;
  QualityLevel: Level[];
  c: Chunk[];
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  isArray: (n) => ['StreamIndex', 'QualityLevel', 'c'].includes(n),
});

/** Expands a StreamIndex's `c` list into exact start times and durations. */
function timeline(s: StreamIndex): Array<{ t: bigint; d: bigint }> {
  const out: Array<{ t: bigint; d: bigint }> = [];
  let next = 0n;
  for (const c of s.c ?? []) {
    let t = c.t !== undefined ? BigInt(c.t) : next;
    for (let i = 0; i < Number(c.r ?? 1); i++) {
      out.push({ t, d: BigInt(c.d) });
      t += BigInt(c.d);
    }
    next = t;
  }
  return out;
}

/** An app that records every ingest body (to compare served samples with what the encoder sent). */
async function recordingServer(root: string) {
  const bodies = new Map<string, Buffer[]>();
  // Cache lookups for the whole test: the recorder reads the body while the middleware handles it,
  // which is only allowed when the point is already known (no async file check in between).
  const handler = liveSmooth(root, { definitionCheckInterval: 3_600_000 });
  const app = express();
  app.use((req, _res, next) => {
    if (isIngest(req)) {
      const parts: Buffer[] = [];
      bodies.set(req.url, parts);
      req.on('data', (c: Buffer) => parts.push(c));
    }
    next();
  });
  app.use('/live', handler);
  const server = liveServer(app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/live`;
  return { bodies, handler, server, base };
}

/** Sample bytes per (track key by name+bitrate, time) from the recorded bodies. */
function ingestedSamples(bodies: Map<string, Buffer[]>): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const parts of bodies.values()) {
    const parser = new SmoothIngestParser({ maxBoxSize: 1 << 26 });
    const events = [...parser.push(Buffer.concat(parts)), ...parser.end()];
    let names = new Map<number, string>();
    for (const e of events) {
      if (e.type === 'header') names = new Map(e.tracks.map((t) => [t.trackId, `${t.info.name}/${t.info.bitrate}`]));
      if (e.type === 'fragment') {
        const f = e.fragment;
        const time = f.time < 0n ? 0n : f.time; // the first AAC fragment is listed from 0 (README)
        out.set(`${names.get(f.trackId)}@${time}`, Buffer.concat(f.data));
      }
    }
  }
  return out;
}

async function get(url: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const r = await fetch(url);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), headers: r.headers };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function runLive(ffmpegBin: string, perTrack: boolean, seconds: number) {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-live-'));
  writeFileSync(path.join(root, 'ch1.isml'), isml({ lookaheadChunks: '2' }));
  const s = await recordingServer(root);
  let p: ReturnType<typeof push> | undefined;
  try {
    expect((await get(`${s.base}/ch1.isml/Manifest`)).status).toBe(404); // Idle, and caches the lookup
    p = push({ ffmpeg: ffmpegBin, url: `${s.base}/ch1.isml`, seconds, perTrack });

    // While live: the manifest lists fragments and the edge is held back by the lookahead.
    const live = await waitFor('a live manifest with 3 listed video fragments', async () => {
      const r = await get(`${s.base}/ch1.isml/Manifest`);
      if (r.status !== 200) return undefined;
      const doc = xml.parse(r.body.toString()) as { SmoothStreamingMedia: { StreamIndex: StreamIndex[] } };
      const video = doc.SmoothStreamingMedia.StreamIndex.find((x) => x.Type === 'video');
      return video && timeline(video).length >= 3 ? { doc, video } : undefined;
    });
    expect(s.handler.origin.points()[0]!.state).toBe('Started');
    const liveVideo = timeline(live.video);
    const last = liveVideo[liveVideo.length - 1]!;
    const bitrate = live.video.QualityLevel[0]!.Bitrate;
    // The fragment after the listed edge waits for its lookahead in the manifest, but is served already.
    const ahead = await get(`${s.base}/ch1.isml/QualityLevels(${bitrate})/Fragments(video=${last.t + last.d})`);
    expect(ahead.status).toBe(200);
    const farAhead = await get(`${s.base}/ch1.isml/QualityLevels(${bitrate})/Fragments(video=${last.t + 100n * last.d})`);
    expect(farAhead.status).toBe(412);
    expect(farAhead.body.length).toBe(0);
    expect(farAhead.headers.get('cache-control')).toBe('no-store');

    const result = await p.done;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await waitFor('Stopped after EOS', async () => (s.handler.origin.points()[0]!.state === 'Stopped' ? true : undefined), 5000);

    // After EOS: the whole event is listed, held-back tail included.
    const m = await get(`${s.base}/ch1.isml/Manifest`);
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toBe('application/vnd.ms-sstr+xml; charset=utf-8');
    const doc = xml.parse(m.body.toString()) as {
      SmoothStreamingMedia: { IsLive: string; LookAheadFragmentCount: string; StreamIndex: StreamIndex[] };
    };
    const root0 = doc.SmoothStreamingMedia;
    expect(root0.IsLive).toBe('TRUE');
    expect(root0.LookAheadFragmentCount).toBe('2');
    const streams = root0.StreamIndex;
    expect(streams.map((x) => x.Type)).toEqual(['video', 'audio']);
    const [video, audio] = streams as [StreamIndex, StreamIndex];
    expect(video.QualityLevel.map((q) => q.Bitrate)).toEqual(['200000', '400000', '800000']);
    expect(audio.QualityLevel.map((q) => q.Bitrate)).toEqual(['96000']);
    for (const q of video.QualityLevel) {
      expect(q.FourCC).toBe('H264');
      expect(q.CodecPrivateData).toMatch(/^00000001[0-9A-F]+00000001[0-9A-F]+$/);
    }
    expect(audio.QualityLevel[0]!.FourCC).toBe('AACL');
    expect(audio.QualityLevel[0]!.CodecPrivateData).toMatch(/^1[0-9A-F]{3}/);
    expect(video.Url).toBe('QualityLevels({bitrate})/Fragments(video={start time})');

    // Timelines: start at 0 (AAC priming clamped), contiguous, and about the pushed length.
    const samples = ingestedSamples(s.bodies);
    for (const si of streams) {
      const tl = timeline(si);
      expect(si.c[0]!.t).toBe('0');
      for (let i = 1; i < tl.length; i++) expect(tl[i]!.t).toBe(tl[i - 1]!.t + tl[i - 1]!.d);
      const total = Number(tl[tl.length - 1]!.t + tl[tl.length - 1]!.d) / 1e7;
      expect(total).toBeGreaterThan(seconds - 3);
      expect(total).toBeLessThan(seconds + 3);

      // Every listed fragment at every bitrate: tfxd time = URL time, a tfrf, samples as ingested.
      for (const q of si.QualityLevel) {
        for (const [i, { t, d }] of tl.entries()) {
          const r = await get(`${s.base}/ch1.isml/QualityLevels(${q.Bitrate})/Fragments(${si.Name}=${t})`);
          expect(r.status).toBe(200);
          const top = [...children(r.body)];
          expect(top.map((b) => b.type)).toEqual(['moof', 'mdat']);
          const trafs = [...children(top[0]!.data, 8)].filter((b) => b.type === 'traf');
          expect(trafs).toHaveLength(1);
          const tfxd = parseTfxd(findChild(trafs[0]!, 'uuid', UUID_TFXD)!);
          expect(tfxd.time).toBe(t);
          expect(tfxd.duration).toBe(d);
          const tfrf = parseTfrf(findChild(trafs[0]!, 'uuid', UUID_TFRF)!);
          expect(tfrf.map((e) => e.time)).toEqual(tl.slice(i + 1, i + 3).map((x) => x.t));
          const sent = samples.get(`${si.Name}/${q.Bitrate}@${t}`);
          expect(sent).toBeDefined();
          expect(top[1]!.data.subarray(8).equals(sent!)).toBe(true);
        }
      }
    }

    // Error statuses.
    expect((await get(`${s.base}/ch1.isml/QualityLevels(123)/Fragments(video=0)`)).status).toBe(404);
    expect((await get(`${s.base}/ch1.isml/QualityLevels(${bitrate})/Fragments(subtitles=0)`)).status).toBe(404);
    expect((await get(`${s.base}/ch1.isml/QualityLevels(${bitrate})/Fragments(video=1)`)).status).toBe(404);
    expect((await get(`${s.base}/ch1.isml/QualityLevels(${bitrate})/Fragments(video=abc)`)).status).toBe(400);
    expect((await get(`${s.base}/ch1.isml/QualityLevels(x)/Fragments(video=0)`)).status).toBe(400);
  } finally {
    p?.child.kill('SIGKILL');
    s.handler.origin.close();
    s.server.closeAllConnections();
    await new Promise((ok) => s.server.close(ok));
    rmSync(root, { recursive: true, force: true });
  }
}

describe('live ingest from ffmpeg to clients', () => {
  withTool('ffmpeg', ffmpeg)(
    'one POST with 3 video bitrates and AAC',
    async () => runLive(ffmpeg!, false, SECONDS),
    (SECONDS + 40) * 1000,
  );

  withTool('ffmpeg', ffmpeg)(
    'one POST per track (4 POSTs, every track_ID 1)',
    async () => runLive(ffmpeg!, true, SECONDS),
    (SECONDS + 40) * 1000,
  );

  // The static ffmpeg 4.x from the npm devDependency, so `npm install && npm test` has an encoder too.
  const npmFfmpeg = npmFfmpegPath();
  withTool('ffmpeg (@ffmpeg-installer/ffmpeg)', npmFfmpeg)(
    'the npm static ffmpeg build pushes the same way',
    async () => runLive(npmFfmpeg!, false, 13),
    50_000,
  );
});
