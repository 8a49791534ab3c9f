/**
 * The DASH/HLS pieces built from what a publishing point stored, without going through Smooth: the
 * captured ffmpeg push is ingested into a point (memory store and disk store); each track's init
 * segment comes from its `trackHeader` event, and every stored fragment is packaged as a CMAF segment
 * (`tfdt`, no uuid boxes) by the point. The concatenation per track is read back by mp4box sample by
 * sample, and decoded by ffmpeg and ffprobe without an error.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { SmoothIngestParser } from '../../lib/ingest/smooth';
import type { MediaFragment, TrackHeader } from '../../lib/media';
import { Origin, createOrigin } from '../../lib/origin';
import type { FragmentStoreFactory } from '../../lib/store/types';
import { diskStore } from '../../lib/store/disk';
import { memoryStore } from '../../lib/store/memory';
import { CMAF_TRACK_ID } from '../../lib/mp4/init';
import { BoxReader, childrenOf } from '../../lib/mp4/reader';
import { mp4boxExtract } from '../helpers/mp4box';
import { fixture } from '../helpers/raw-ingest';
import { isml } from '../helpers/server';
import { ffmpegPath, ffprobePath, withTool } from '../helpers/tools';

const F = fixture();
/** AAC priming in the fixture: audio decodes from −1024 samples at 48 kHz, in 10 MHz units. */
const PRIMING = 213_333n;

interface Track {
  header: TrackHeader;
  fragments: MediaFragment[];
  /** init, then each segment (head + stored samples), as a player fetches them. */
  parts: Buffer[];
}

async function bytesOf(data: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(data)) return data;
  const chunks: Buffer[] = [];
  for await (const c of data) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Ingests the fixture into `ch1.isml` and packages every stored fragment as CMAF, track by track. */
async function ingestAndPackage(store: FragmentStoreFactory): Promise<{ tracks: Track[]; fromDisk: number; close(): void }> {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-cmaf-'));
  writeFileSync(path.join(root, 'ch1.isml'), isml());
  const origin: Origin = createOrigin(root, { stateFile: false, store });
  const point = (await origin.resolve('ch1.isml'))!;
  const tracks = new Map<string, Track>();
  point.on('trackHeader', (e) => tracks.set(e.track.key, { header: e.track, fragments: [], parts: [e.track.init] }));
  point.on('fragment', (e) => tracks.get(e.track)!.fragments.push(e.fragment));
  const session = point.openIngest('ch1', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  session.write(F.all); // header, every fragment, end of stream: the whole tail is published
  session.finish();
  let fromDisk = 0;
  for (const t of tracks.values()) {
    const offset = t.header.info.type === 'audio' ? PRIMING : 0n;
    for (const f of t.fragments) {
      const found = point.lookup(t.header.info.name, t.header.info.bitrate, [], f.time);
      if (found.status !== 'ok') throw new Error(`${t.header.key}@${f.time}: ${found.status}`);
      // A store on disk answers from memory until its write is done; wait for it to read from the file.
      let packaged = await point.cmafSegment(found, { decodeTimeOffset: offset });
      for (let i = 0; i < 1000 && store !== memoryStore && packaged && Buffer.isBuffer(packaged.data); i++) {
        await new Promise((ok) => setTimeout(ok, 5));
        packaged = await point.cmafSegment(found, { decodeTimeOffset: offset });
      }
      if (!packaged) throw new Error(`${t.header.key}@${f.time}: gone`);
      if (packaged.data instanceof Readable) fromDisk++;
      const data = await bytesOf(packaged.data);
      expect(data.length).toBe(packaged.dataSize);
      t.parts.push(Buffer.concat([packaged.head, data]));
    }
  }
  return {
    tracks: [...tracks.values()],
    fromDisk,
    close() {
      origin.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Box types of a buffer of top-level boxes, descending into moof and traf. */
function types(bytes: Buffer): string[] {
  const reader = new BoxReader({ maxBoxSize: bytes.length });
  const out: string[] = [];
  const walk = (b: { type: string; uuid?: string; data: Buffer; headerSize: number }): void => {
    out.push(b.type === 'uuid' ? `uuid:${b.uuid}` : b.type);
    if (b.type === 'moof' || b.type === 'traf') for (const c of childrenOf(b as never)) walk(c);
  };
  for (const b of [...reader.push(bytes), ...reader.end()]) walk(b);
  return out;
}

const dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-cmaf-files-'));
const disk = mkdtempSync(path.join(tmpdir(), 'live-smooth-cmaf-disk-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(disk, { recursive: true, force: true });
});

describe.each([
  ['memory store', memoryStore],
  ['disk store', diskStore({ folder: disk })],
] as const)('CMAF from a point with the %s', (name, store) => {
  let result: Awaited<ReturnType<typeof ingestAndPackage>>;
  beforeAll(async () => {
    result = await ingestAndPackage(store);
  });
  afterAll(() => result.close());

  it('has an init segment per track and every fragment stored, read back as stored', () => {
    expect(result.tracks.map((t) => t.header.key).sort()).toEqual(['audio/audio/32000', 'video/video/100000', 'video/video/50000']);
    for (const t of result.tracks) {
      expect(t.fragments).toHaveLength(4);
      expect(types(t.header.init)).toEqual(['ftyp', 'moov']);
    }
    if (name === 'disk store') expect(result.fromDisk).toBe(12);
  });

  it('segments carry tfdt and no uuid box (no tfxd, no tfrf)', () => {
    for (const t of result.tracks) {
      for (const part of t.parts.slice(1)) {
        const seen = types(part);
        expect(seen.slice(0, 6)).toEqual(['moof', 'mfhd', 'traf', 'tfhd', 'tfdt', 'trun']);
        expect(seen.filter((x) => x.startsWith('uuid'))).toEqual([]);
        expect(seen[seen.length - 1]).toBe('mdat');
      }
    }
  });

  it('mp4box reads every sample of every track, byte for byte, from decode time 0', () => {
    for (const t of result.tracks) {
      const got = mp4boxExtract(CMAF_TRACK_ID, t.parts);
      const samples = t.fragments.reduce((n, f) => n + f.samples.count, 0);
      expect({ track: t.header.key, samples: got.samples.length }).toEqual({ track: t.header.key, samples });
      expect(got.timescale).toBe(10_000_000);
      expect(got.codec).toMatch(t.header.info.type === 'video' ? /^avc1\./ : /^mp4a\.40\.2$/);
      expect(got.samples[0]!.dts).toBe(0);
      expect(Buffer.concat(got.samples.map((s) => s.data)).equals(Buffer.concat(t.fragments.map((f) => f.data)))).toBe(true);
      // Decode times continue across segments: each tfdt is where the previous segment ended.
      for (let i = 1; i < got.samples.length; i++) expect(got.samples[i]!.dts).toBe(got.samples[i - 1]!.dts + got.samples[i - 1]!.duration);
    }
  });

  const ffmpeg = ffmpegPath();
  const ffprobe = ffprobePath();
  withTool('ffmpeg', ffmpeg)('ffmpeg decodes init + segments of each track without an error', () => {
    for (const t of result.tracks) {
      const file = path.join(dir, `${name.replace(' ', '-')}-${t.header.trackId}.mp4`);
      writeFileSync(file, Buffer.concat(t.parts));
      const r = spawnSync(ffmpeg!, ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
      expect({ track: t.header.key, status: r.status, stderr: r.stderr }).toEqual({ track: t.header.key, status: 0, stderr: '' });
    }
  });

  withTool('ffprobe', ffprobe)('ffprobe sees the codec and counts every frame', () => {
    for (const t of result.tracks) {
      const file = path.join(dir, `${name.replace(' ', '-')}-probe-${t.header.trackId}.mp4`);
      writeFileSync(file, Buffer.concat(t.parts));
      const r = spawnSync(ffprobe!, ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'json', file], {
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      const [stream] = (JSON.parse(r.stdout) as { streams: Array<Record<string, string>> }).streams;
      expect(stream).toEqual({
        codec_name: t.header.info.type === 'video' ? 'h264' : 'aac',
        nb_read_frames: String(t.fragments.reduce((n, f) => n + f.samples.count, 0)),
      });
    }
  });
});
