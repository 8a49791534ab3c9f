import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commitFragment, parseMovieFragment, type ParsedFragment } from '../../../lib/ingest/fragment';
import { MediaFragment, SampleTable, packFragment } from '../../../lib/media';
import { TFHD, TRUN, Trex, parseMfhd, parseMoov, parseTfdt, parseTfhd, parseTrun } from '../../../lib/mp4/boxes';
import { CMAF_TRACK_ID, initSegment } from '../../../lib/mp4/init';
import { Box, BoxReader, childrenOf } from '../../../lib/mp4/reader';
import { cmafSegment } from '../../../lib/package/cmaf';
import { NON_SYNC, SYNC, box, fullBox, fullUuidBox, payload as bytesOf, u32 } from '../../helpers/fmp4';
import { mp4boxExtract } from '../../helpers/mp4box';
import { ffmpegPath, ffprobePath, withTool } from '../../helpers/tools';

const FIXTURE_PATH = path.join(__dirname, '../../fixtures/ffmpeg-push-all.bin');

function topLevel(bytes: Buffer): Box[] {
  const reader = new BoxReader({ maxBoxSize: bytes.length });
  return [...reader.push(bytes), ...reader.end()];
}

/** The fixture as the ingest would store it: its moov, and one MediaFragment per track fragment, in stream order. */
function loadFixture(): { moov: Box; fragments: MediaFragment[] } {
  const boxes = topLevel(readFileSync(FIXTURE_PATH));
  const moov = boxes.find((b) => b.type === 'moov')!;
  const trexes = new Map<number, Trex | undefined>(parseMoov(moov).tracks.map((t) => [t.trackId, t.trex]));
  const fragments: MediaFragment[] = [];
  for (let i = 0; i < boxes.length; i++) {
    const moof = boxes[i]!;
    if (moof.type !== 'moof') continue;
    const mdat = boxes[i + 1]!;
    for (const parsed of parseMovieFragment(moof, mdat, moof.data.length, (id) => (trexes.has(id) ? trexes.get(id) : false))) {
      fragments.push(pack(parsed));
    }
  }
  return { moov, fragments };
}

/** What the ingest does with a parsed track fragment (here without the priming clamp: times as sent). */
function pack(parsed: ParsedFragment): MediaFragment {
  return commitFragment(parsed, { time: parsed.time, duration: parsed.duration }, 0n, 0);
}

const { moov: MOOV, fragments: FRAGMENTS } = loadFixture();
const TRACK_IDS = [...new Set(FRAGMENTS.map((f) => f.trackId))];
const AUDIO_TRACK = parseMoov(MOOV).tracks.find((t) => t.handler === 'soun')!.trackId;
/** AAC priming in the fixture: the first audio fragment starts 1024 samples at 48 kHz before 0, in 10 MHz units. */
const PRIMING = 213333n;

/** Every box type in a moof (moof and traf descended into). */
function allTypes(b: Box): string[] {
  const out: string[] = [];
  for (const c of childrenOf(b)) {
    out.push(c.type);
    if (c.type === 'traf') out.push(...allTypes(c));
  }
  return out;
}

/** Reads a written segment back the way a client does, from `head` and the sample data sent after it. */
function readSegment(head: Buffer, moofSize: number, data: Buffer) {
  const bytes = Buffer.concat([head, data]);
  const top = topLevel(bytes);
  expect(top.map((b) => b.type)).toEqual(['moof', 'mdat']);
  const [moof, mdat] = top as [Box, Box];
  expect(moof.data.length).toBe(moofSize);
  const moofChildren = [...childrenOf(moof)];
  expect(moofChildren.map((c) => c.type)).toEqual(['mfhd', 'traf']);
  const traf = moofChildren[1]!;
  const trafChildren = [...childrenOf(traf)];
  const tfdtBox = trafChildren.find((c) => c.type === 'tfdt');
  const trunBox = trafChildren.find((c) => c.type === 'trun')!;
  return {
    bytes,
    moof,
    mdat,
    sequenceNumber: parseMfhd(moofChildren[0]!),
    trafTypes: trafChildren.map((c) => c.type),
    trafChildren,
    tfhd: parseTfhd(trafChildren.find((c) => c.type === 'tfhd')!),
    tfdtVersion: tfdtBox?.data[8],
    tfdt: tfdtBox && parseTfdt(tfdtBox),
    trunVersion: trunBox.data[8],
    trun: parseTrun(trunBox),
    allTypes: allTypes(moof),
  };
}

function tableOf(t: SampleTable) {
  return Array.from({ length: t.count }, (_, i) => ({
    duration: t.duration(i),
    size: t.size(i),
    flags: t.flags(i),
    compositionOffset: t.compositionOffset(i),
  }));
}

/** A stored fragment built in code (B-frames, passthrough boxes, description index). */
function synthetic(o: { ctos?: number[]; extra?: Buffer[]; sampleDescriptionIndex?: number } = {}): MediaFragment {
  const ctos = o.ctos ?? [0, 0, 0];
  const data = ctos.map((_, i) => bytesOf(100 + i * 10, i + 1));
  return packFragment(
    {
      trackId: 1,
      sequenceNumber: 9,
      sampleDescriptionIndex: o.sampleDescriptionIndex,
      samples: ctos.map((cto, i) => ({
        duration: 3600,
        size: data[i]!.length,
        flags: i === 0 ? SYNC : NON_SYNC,
        compositionOffset: cto,
      })),
      extra: o.extra ?? [],
      data,
      dataSize: data.reduce((n, d) => n + d.length, 0),
    },
    { time: 90_000n, duration: 10_800n, presentationTime: 90_000n, decodeTime: 86_400n, decodeTimeSent: true, storedAt: 0 },
  );
}

describe('cmafSegment on every fragment of the ffmpeg ismv fixture', () => {
  it('has 4 fragments per track (2 video, 1 audio), the first audio one starting at -213333', () => {
    expect(TRACK_IDS).toEqual([1, 2, 3]);
    for (const id of TRACK_IDS) expect(FRAGMENTS.filter((f) => f.trackId === id)).toHaveLength(4);
    const audio = FRAGMENTS.filter((f) => f.trackId === AUDIO_TRACK);
    expect(audio[0]!.decodeTime).toBe(-PRIMING);
    expect(audio.slice(1).every((f) => f.decodeTime > 0n)).toBe(true);
  });

  const cases = FRAGMENTS.map((f, i) => [i, f.trackId, f.decodeTime, f] as const);

  it.each(cases)('fragment %i (track %i, decode time %s)', (_i, trackId, decodeTime, f) => {
    const offset = decodeTime < 0n ? PRIMING : 0n;
    const outId = trackId + 100; // the init's track_ID need not be the ingest's
    const { head, moofSize } = cmafSegment(f, { trackId: outId, decodeTimeOffset: offset });
    const seg = readSegment(head, moofSize, f.data);
    expect(seg.sequenceNumber).toBe(f.sequenceNumber);
    expect(seg.trafTypes).toEqual(['tfhd', 'tfdt', 'trun']);
    expect(seg.allTypes).not.toContain('uuid');
    expect(seg.tfhd.trackId).toBe(outId);
    expect(seg.tfhd.flags & TFHD.DEFAULT_BASE_IS_MOOF).toBe(TFHD.DEFAULT_BASE_IS_MOOF);
    expect(seg.tfhd.flags & TFHD.BASE_DATA_OFFSET).toBe(0);
    expect(seg.tfhd.baseDataOffset).toBeUndefined();
    expect(seg.tfdtVersion).toBe(1);
    expect(seg.tfdt).toBe(decodeTime + offset);
    // data_offset is relative to the moof (default-base-is-moof): it must land on the first sample byte.
    expect(seg.trun.flags & TRUN.DATA_OFFSET).toBe(TRUN.DATA_OFFSET);
    expect(seg.trun.dataOffset).toBe(moofSize + 8);
    expect(seg.bytes.subarray(seg.trun.dataOffset!, seg.trun.dataOffset! + f.dataSize)).toEqual(f.data);
    expect(seg.mdat.data.length).toBe(8 + f.dataSize);
    expect(seg.trun.samples).toEqual(tableOf(f.samples));
    // And the ingest parser, reading the segment as if an encoder had sent it, finds the same samples and bytes.
    const [back] = parseMovieFragment(seg.moof, seg.mdat, moofSize, () => undefined);
    expect(back!.decodeTime).toBe(decodeTime + offset);
    expect(back!.samples.toArray()).toEqual(tableOf(f.samples));
    expect(Buffer.concat(back!.data)).toEqual(f.data);
  });

  it('applies decodeTimeOffset and sequenceNumber, and throws a RangeError when tfdt would be negative', () => {
    const audio0 = FRAGMENTS.find((f) => f.trackId === AUDIO_TRACK)!;
    expect(() => cmafSegment(audio0, { trackId: AUDIO_TRACK })).toThrow(RangeError);
    expect(() => cmafSegment(audio0, { trackId: AUDIO_TRACK, decodeTimeOffset: PRIMING - 1n })).toThrow(/negative/);
    const atZero = cmafSegment(audio0, { trackId: AUDIO_TRACK, decodeTimeOffset: PRIMING });
    expect(readSegment(atZero.head, atZero.moofSize, audio0.data).tfdt).toBe(0n);

    const video = FRAGMENTS[3]!;
    expect(video.decodeTime).toBe(10_000_000n);
    const shifted = cmafSegment(video, { trackId: 1, decodeTimeOffset: 17_000_000_000_000_000n, sequenceNumber: 77 });
    const seg = readSegment(shifted.head, shifted.moofSize, video.data);
    expect(seg.tfdt).toBe(17_000_000_010_000_000n);
    expect(seg.sequenceNumber).toBe(77);
    const back = cmafSegment(video, { trackId: 1, decodeTimeOffset: -10_000_000n });
    expect(readSegment(back.head, back.moofSize, video.data).tfdt).toBe(0n);
    expect(() => cmafSegment(video, { trackId: 1, decodeTimeOffset: -10_000_001n })).toThrow(RangeError);
    expect(() => cmafSegment(video, { trackId: 1, decodeTimeOffset: 1n << 64n })).toThrow(RangeError);
  });
});

describe('cmafSegment on synthetic fragments', () => {
  it('keeps sdtp, sbgp and sgpd in order and drops every uuid (tfxd, tfrf, PIFF)', () => {
    const sdtp = fullBox('sdtp', 0, 0, Buffer.from([0x20, 0x10, 0x10]));
    const sbgp = fullBox('sbgp', 0, 0, Buffer.from('roll', 'latin1'), u32(1), u32(3), u32(1));
    const sgpd = fullBox('sgpd', 1, 0, Buffer.from('roll', 'latin1'), u32(2), u32(1), Buffer.from([0xff, 0xff]));
    const piff = fullUuidBox('a2394f525a9b4f14a2446c427c648df4', 0, 0, u32(0));
    const tfxd = fullUuidBox('6d1d9b0542d544e680e2141daff757b2', 1, 0, Buffer.alloc(16));
    const tfrf = fullUuidBox('d4807ef2ca3946958e5426cb9e46a79f', 1, 0, Buffer.from([0]));
    const free = box('free', Buffer.alloc(4));
    const f = synthetic({ extra: [piff, sdtp, tfxd, sbgp, tfrf, sgpd, free] });
    const { head, moofSize } = cmafSegment(f, { trackId: 1 });
    const seg = readSegment(head, moofSize, f.data);
    expect(seg.trafTypes).toEqual(['tfhd', 'tfdt', 'trun', 'sdtp', 'sbgp', 'sgpd']);
    expect(seg.allTypes).not.toContain('uuid');
    expect(seg.trafChildren.slice(3).map((c) => c.data)).toEqual([sdtp, sbgp, sgpd]);
    expect(seg.trun.dataOffset).toBe(moofSize + 8);
    expect(seg.bytes.subarray(moofSize + 8)).toEqual(f.data);
  });

  it('writes the sample description index only when the fragment has one', () => {
    const without = synthetic();
    let s = cmafSegment(without, { trackId: 4 });
    let seg = readSegment(s.head, s.moofSize, without.data);
    expect(seg.tfhd.flags).toBe(TFHD.DEFAULT_BASE_IS_MOOF);
    expect(seg.tfhd.sampleDescriptionIndex).toBeUndefined();
    const withIndex = synthetic({ sampleDescriptionIndex: 2 });
    s = cmafSegment(withIndex, { trackId: 4 });
    seg = readSegment(s.head, s.moofSize, withIndex.data);
    expect(seg.tfhd.flags).toBe(TFHD.DEFAULT_BASE_IS_MOOF | TFHD.SAMPLE_DESCRIPTION_INDEX);
    expect(seg.tfhd.sampleDescriptionIndex).toBe(2);
  });

  it('keeps B-frame composition offsets: trun v0 when all are positive, v1 with signed offsets when one is negative', () => {
    const positive = synthetic({ ctos: [7200, 0, 3600, 14400] });
    let s = cmafSegment(positive, { trackId: 1 });
    let seg = readSegment(s.head, s.moofSize, positive.data);
    expect(seg.trunVersion).toBe(0);
    expect(seg.trun.flags & TRUN.SAMPLE_CTO).toBe(TRUN.SAMPLE_CTO);
    expect(seg.trun.samples.map((x) => x.compositionOffset)).toEqual([7200, 0, 3600, 14400]);
    // tfdt is the decode time as stored: the first composition offset is not added or removed here.
    expect(seg.tfdt).toBe(86_400n);

    const negative = synthetic({ ctos: [0, -3600, 7200] });
    s = cmafSegment(negative, { trackId: 1 });
    seg = readSegment(s.head, s.moofSize, negative.data);
    expect(seg.trunVersion).toBe(1);
    expect(seg.trun.samples.map((x) => x.compositionOffset)).toEqual([0, -3600, 7200]);

    const none = synthetic();
    s = cmafSegment(none, { trackId: 1 });
    seg = readSegment(s.head, s.moofSize, none.data);
    expect(seg.trun.flags & TRUN.SAMPLE_CTO).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------
// Players: init + segments as a DASH/HLS client would fetch them
// ---------------------------------------------------------------------------------------------------

/** The track's init segment followed by the CMAF segments of the given fragments, as one file, plus each part. */
function trackFile(trackId: number, fragments: readonly MediaFragment[], offset: bigint): { file: Buffer; parts: Buffer[] } {
  const parts = [initSegment(MOOV, trackId)];
  fragments.forEach((f, i) => {
    const { head } = cmafSegment(f, { trackId: CMAF_TRACK_ID, sequenceNumber: i + 1, decodeTimeOffset: offset });
    parts.push(Buffer.concat([head, f.data]));
  });
  return { file: Buffer.concat(parts), parts };
}

/** The samples a player must find: DTS from the tfdt on, in 10 MHz units. */
function expectedSamples(fragments: readonly MediaFragment[], offset: bigint) {
  const out: Array<{ dts: number; cts: number; duration: number; size: number; sync: boolean }> = [];
  for (const f of fragments) {
    let dts = Number(f.decodeTime + offset);
    for (let i = 0; i < f.samples.count; i++) {
      out.push({
        dts,
        cts: dts + f.samples.compositionOffset(i),
        duration: f.samples.duration(i),
        size: f.samples.size(i),
        sync: (f.samples.flags(i) & 0x00010000) === 0,
      });
      dts += f.samples.duration(i);
    }
  }
  return out;
}

/** Per track: the fragments to play (decode time ≥ 0 after the offset) and the offset (audio priming). */
const PLAYABLE = TRACK_IDS.map((trackId) => {
  const offset = trackId === AUDIO_TRACK ? PRIMING : 0n;
  const fragments = FRAGMENTS.filter((f) => f.trackId === trackId && f.decodeTime + offset >= 0n);
  const samples = fragments.reduce((n, f) => n + f.samples.count, 0);
  const bytes = fragments.reduce((n, f) => n + f.dataSize, 0);
  return { trackId, offset, fragments, samples, bytes, kind: trackId === AUDIO_TRACK ? 'audio' : 'video' };
});

describe.each(PLAYABLE.map((p) => [p.trackId, p.kind, p] as const))('track %i (%s): init + CMAF segments', (trackId, kind, p) => {
  it('are read by mp4box: every sample, byte for byte, at its DTS', () => {
    expect(p.fragments).toHaveLength(4);
    const { parts } = trackFile(trackId, p.fragments, p.offset);
    const got = mp4boxExtract(CMAF_TRACK_ID, parts);
    expect(got.codec).toMatch(kind === 'video' ? /^avc1\.[0-9a-f]{6}$/ : /^mp4a\.40\.2$/);
    expect(got.timescale).toBe(10_000_000);
    expect(got.samples).toHaveLength(p.samples);
    expect(got.samples.reduce((n, s) => n + s.size, 0)).toBe(p.bytes);
    expect(got.samples.map(({ data: _data, ...rest }) => rest)).toEqual(expectedSamples(p.fragments, p.offset));
    expect(Buffer.concat(got.samples.map((s) => s.data))).toEqual(Buffer.concat(p.fragments.map((f) => f.data)));
    expect(got.samples[0]!.dts).toBe(0);
    expect(got.samples[0]!.sync).toBe(true);
  });
});

describe('ffmpeg and ffprobe on init + CMAF segments', () => {
  const ffmpeg = ffmpegPath();
  const ffprobe = ffprobePath();
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'live-smooth-cmaf-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, bytes: Buffer): string => {
    const file = path.join(dir, name);
    writeFileSync(file, bytes);
    return file;
  };

  const probe = (file: string) => {
    const r = spawnSync(ffprobe!, ['-v', 'error', '-count_frames', '-show_entries',
      'stream=codec_name,time_base,start_time,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return (JSON.parse(r.stdout) as { streams: Array<Record<string, string>> }).streams;
  };

  for (const p of PLAYABLE) {
    withTool('ffmpeg', ffmpeg)(`track ${p.trackId} (${p.kind}) decodes without an error`, () => {
      const file = write(`track${p.trackId}.mp4`, trackFile(p.trackId, p.fragments, p.offset).file);
      const r = spawnSync(ffmpeg!, ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    });

    withTool('ffprobe', ffprobe)(`track ${p.trackId} (${p.kind}): ffprobe sees the codec, 10 MHz and every frame`, () => {
      const file = write(`probe${p.trackId}.mp4`, trackFile(p.trackId, p.fragments, p.offset).file);
      const streams = probe(file);
      expect(streams).toHaveLength(1);
      expect(streams[0]).toMatchObject({
        codec_name: p.kind === 'video' ? 'h264' : 'aac',
        time_base: '1/10000000',
        start_time: '0.000000',
        nb_read_frames: String(p.samples),
      });
    });
  }

  withTool('ffprobe', ffprobe)('takes the start time from tfdt: segments from the second fragment on start at 1 s', () => {
    const video = PLAYABLE.find((p) => p.kind === 'video')!;
    const later = video.fragments.slice(1);
    expect(later[0]!.decodeTime).toBe(10_000_000n);
    const streams = probe(write('later.mp4', trackFile(video.trackId, later, 0n).file));
    expect(streams[0]).toMatchObject({
      codec_name: 'h264',
      start_time: '1.000000',
      nb_read_frames: String(later.reduce((n, f) => n + f.samples.count, 0)),
    });
  });
});
