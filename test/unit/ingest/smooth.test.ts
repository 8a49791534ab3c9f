import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { SmoothError } from '../../../lib/errors';
import { SmoothIngestParser, smoothIngest } from '../../../lib/ingest/smooth';
import type { IngestEvent } from '../../../lib/ingest/types';
import {
  TrackSpec,
  box,
  cat,
  fragment,
  ftyp,
  fullUuidBox,
  ingestHeader,
  lsmBox,
  lsmSmil,
  mdat,
  mfhd,
  mfra,
  moof,
  moov,
  NON_SYNC,
  SYNC,
  payload,
  selfOffsetFragment,
  tfhd,
  tfrf,
  tfxd,
  traf,
  trun,
  u32,
  UUID_STREAM_MANIFEST,
  visualEntry,
} from '../../helpers/fmp4';

const FIXTURE = readFileSync(path.join(__dirname, '../../fixtures/ffmpeg-push-all.bin'));
const MAX = 1 << 24;
/** ftyp + Live Server Manifest box + moov of the fixture. */
const HEADER_SIZE = 24 + 2244 + 1796;

function parse(chunks: Buffer[], maxBoxSize = MAX): IngestEvent[] {
  const p = new SmoothIngestParser({ maxBoxSize });
  const events: IngestEvent[] = [];
  for (const c of chunks) events.push(...p.push(c));
  events.push(...p.end());
  return events;
}

/** Runs the parser over `input` and returns the SmoothError code it throws, if any. */
function errorCode(input: Buffer, maxBoxSize = MAX): string | undefined {
  try {
    parse([input], maxBoxSize);
  } catch (err) {
    if (!(err instanceof SmoothError)) throw err;
    return err.code;
  }
  return undefined;
}

/** First difference between two event lists (times, durations, samples, sample bytes), or undefined. */
function difference(expected: IngestEvent[], actual: IngestEvent[]): string | undefined {
  if (actual.length !== expected.length) return `${actual.length} events instead of ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    if (a.type !== e.type) return `event ${i}: ${a.type} instead of ${e.type}`;
    if (e.type === 'header' && a.type === 'header') {
      if (!a.boxes.equals(e.boxes)) return `event ${i}: header boxes differ`;
      if (JSON.stringify(a.tracks) !== JSON.stringify(e.tracks)) return `event ${i}: tracks differ`;
    } else if (e.type === 'fragment' && a.type === 'fragment') {
      const x = e.fragment;
      const y = a.fragment;
      if (
        x.trackId !== y.trackId ||
        x.sequenceNumber !== y.sequenceNumber ||
        x.time !== y.time ||
        x.duration !== y.duration ||
        x.decodeTime !== y.decodeTime ||
        x.sampleDescriptionIndex !== y.sampleDescriptionIndex ||
        x.dataSize !== y.dataSize ||
        x.samples.count !== y.samples.count
      ) {
        return `event ${i}: fragment fields differ`;
      }
      const xs = x.samples.toArray();
      const ys = y.samples.toArray();
      for (let s = 0; s < xs.length; s++) {
        const p = xs[s]!;
        const q = ys[s]!;
        if (p.duration !== q.duration || p.size !== q.size || p.flags !== q.flags || p.compositionOffset !== q.compositionOffset) {
          return `event ${i}: sample ${s} differs`;
        }
      }
      if (!Buffer.concat(x.data).equals(Buffer.concat(y.data))) return `event ${i}: sample bytes differ`;
      if (!Buffer.concat(x.extra).equals(Buffer.concat(y.extra))) return `event ${i}: extra boxes differ`;
    }
  }
  return undefined;
}

describe('SmoothIngestParser on the captured ffmpeg push', () => {
  const events = parse([FIXTURE]);
  const fragments = events.flatMap((e) => (e.type === 'fragment' ? [e.fragment] : []));

  it('reports header, 12 fragments, end — in stream order', () => {
    expect(events.map((e) => e.type)).toEqual(['header', ...Array<string>(12).fill('fragment'), 'end']);
  });

  it('describes the three tracks of the header', () => {
    const header = events[0]!;
    if (header.type !== 'header') throw new Error('no header');
    expect(header.tracks.map((t) => [t.trackId, t.info.type, t.info.name, t.info.bitrate, t.info.fourCC])).toEqual([
      [1, 'video', 'video', 100000, 'H264'],
      [2, 'video', 'video', 50000, 'H264'],
      [3, 'audio', 'audio', 32000, 'AACL'],
    ]);
    const [v1, v2, a] = header.tracks.map((t) => t.info);
    for (const v of [v1!, v2!]) {
      expect(v.codecPrivateData).toMatch(/^00000001(67[0-9A-F]+)00000001(68[0-9A-F]+)$/);
      expect(v.timescale).toBe(10_000_000);
      expect(v.nalUnitLengthField).toBe(4);
      expect(v.language).toBeUndefined(); // 'und'
    }
    expect([v1!.maxWidth, v1!.maxHeight, v2!.maxWidth, v2!.maxHeight]).toEqual([160, 90, 96, 54]);
    // AAC: CodecPrivateData is the AudioSpecificConfig: object type 2 (LC), 48 kHz, mono.
    expect(a!.codecPrivateData).toBe('118856E500');
    const asc = Buffer.from(a!.codecPrivateData, 'hex');
    expect(asc[0]! >> 3).toBe(2);
    expect(((asc[0]! & 7) << 1) | (asc[1]! >> 7)).toBe(3); // sampling frequency index 3 = 48000
    expect((asc[1]! >> 3) & 15).toBe(1);
    expect(a).toMatchObject({ audioTag: 255, channels: 1, samplingRate: 48000, bitsPerSample: 16, packetSize: 4 });
  });

  it('keeps own copies of the raw header boxes (ftyp, LSM, moov)', () => {
    const header = events[0]!;
    if (header.type !== 'header') throw new Error('no header');
    expect(header.boxes.equals(FIXTURE.subarray(0, HEADER_SIZE))).toBe(true);
    expect(header.boxes.buffer).not.toBe(FIXTURE.buffer);
  });

  it('reports each track fragment with its tfxd time and duration', () => {
    const byTrack = (id: number) => fragments.filter((f) => f.trackId === id);
    expect(byTrack(1).map((f) => f.time)).toEqual([0n, 10_000_000n, 20_000_000n, 30_000_000n]);
    expect(byTrack(2).map((f) => f.time)).toEqual([0n, 10_000_000n, 20_000_000n, 30_000_000n]);
    expect(byTrack(1).every((f) => f.duration === 10_000_000n && f.samples.count === 25)).toBe(true);
    // Audio starts before 0 (AAC priming) and its fragments abut exactly.
    const audio = byTrack(3);
    expect(audio[0]!.time).toBe(-213_333n);
    for (let i = 1; i < audio.length; i++) expect(audio[i]!.time).toBe(audio[i - 1]!.time + audio[i - 1]!.duration);
    expect(fragments.map((f) => f.sequenceNumber)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('resolves every sample and locates its bytes in the mdat', () => {
    for (const f of fragments) {
      expect(f.samples.toArray().reduce((s, x) => s + x.size, 0)).toBe(f.dataSize);
      expect(f.data.reduce((s, x) => s + x.length, 0)).toBe(f.dataSize);
      expect(f.samples.toArray().reduce((s, x) => s + BigInt(x.duration), 0n)).toBe(f.duration);
      expect(f.decodeTime).toBeUndefined(); // ffmpeg's ISM mode writes no tfdt
    }
    // Video starts each fragment with a keyframe; H.264 samples are 4-byte length-prefixed NAL units.
    const v = fragments[0]!;
    expect(v.samples.flags(0) & 0x00010000).toBe(0);
    expect(v.samples.flags(1) & 0x00010000).toBe(0x00010000);
    const first = Buffer.concat(v.data);
    expect(first.readUInt32BE(0)).toBeLessThan(v.samples.size(0));
  });

  it('gives identical events for 2-way splits: every 7th byte of the header, around every box boundary, then a stride', () => {
    // One parse costs about a millisecond (mostly the LSM XML), so not every byte: every 7th byte while the
    // parser changes phase (ftyp, LSM, moov), every byte that cuts or borders a top-level box header, and
    // a prime stride elsewhere. The one-byte-chunk test below puts a chunk boundary at every offset.
    const cuts = new Set<number>();
    for (let c = 0; c <= HEADER_SIZE; c += 7) cuts.add(c);
    for (let at = 0; at < FIXTURE.length; at += FIXTURE.readUInt32BE(at)) {
      for (let d = -2; d <= 26; d++) if (at + d >= 0 && at + d <= FIXTURE.length) cuts.add(at + d);
    }
    for (let c = HEADER_SIZE; c <= FIXTURE.length; c += 97) cuts.add(c);
    cuts.add(FIXTURE.length);
    const failures: string[] = [];
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      const diff = difference(events, parse([FIXTURE.subarray(0, cut), FIXTURE.subarray(cut)]));
      if (diff && failures.push(`cut ${cut}: ${diff}`) >= 10) break;
    }
    expect(failures).toEqual([]);
    expect(cuts.size).toBeGreaterThan(2500);
  });

  it('gives identical events when fed one byte at a time', () => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < FIXTURE.length; i++) chunks.push(Buffer.from([FIXTURE[i]!]));
    expect(difference(events, parse(chunks))).toBeUndefined();
  });

  it('reports fragments as soon as their mdat completes', () => {
    const p = new SmoothIngestParser({ maxBoxSize: MAX });
    const fragmentEnd = HEADER_SIZE + 320 + 19928;
    expect(p.push(FIXTURE.subarray(0, HEADER_SIZE - 1))).toEqual([]);
    expect(p.push(FIXTURE.subarray(HEADER_SIZE - 1, HEADER_SIZE)).map((e) => e.type)).toEqual(['header']);
    expect(p.push(FIXTURE.subarray(HEADER_SIZE, fragmentEnd - 1))).toEqual([]);
    expect(p.push(FIXTURE.subarray(fragmentEnd - 1, fragmentEnd)).map((e) => e.type)).toEqual(['fragment']);
  });

  it('throws ERR_TRUNCATED for an input cut inside a box, and emits no end without mfra', () => {
    expect(() => parse([FIXTURE.subarray(0, 10_000)])).toThrow(expect.objectContaining({ code: 'ERR_TRUNCATED' }));
    const clean = parse([FIXTURE.subarray(0, FIXTURE.length - 8)]);
    expect(clean.map((e) => e.type)).not.toContain('end');
  });

  it('is what the default factory creates', () => {
    expect(smoothIngest({ maxBoxSize: MAX })).toBeInstanceOf(SmoothIngestParser);
  });
});

describe('SmoothIngestParser on built streams', () => {
  const tracks: TrackSpec[] = [
    { trackId: 1, kind: 'video', bitrate: 800000, params: { trackName: 'video' } },
    { trackId: 2, kind: 'audio', bitrate: 96000 },
  ];
  const header = ingestHeader(tracks);
  const v = [payload(100, 1), payload(20, 2)];
  const a = [payload(30, 3)];
  const time = 17_640_000_000_000_001n;

  it('reads past a text track of an unknown format: the other tracks and their fragments go on, its own are checked and dropped', () => {
    const withSparse: TrackSpec[] = [
      tracks[0]!,
      { trackId: 3, kind: 'text', bitrate: 1000, params: { trackName: 'ads', parentTrackName: 'video', FourCC: 'WXYZ', Subtype: 'DATA' } },
    ];
    const input = cat(
      ftyp(),
      lsmBox(lsmSmil(withSparse)),
      moov(withSparse),
      fragment(1, [{ trackId: 3, time, samples: [payload(12, 9)] }]),
      fragment(2, [{ trackId: 1, time, samples: v }]),
    );
    const events = parse([input]);
    const [h] = events;
    if (h?.type !== 'header') throw new Error('no header');
    expect(h.tracks.map((t) => t.trackId)).toEqual([1]);
    expect(h.skipped).toEqual(["track 3: unknown text FourCC 'WXYZ'"]);
    expect(events.slice(1).map((e) => (e.type === 'fragment' ? e.fragment.trackId : e.type))).toEqual([1]);
    // A malformed fragment of the sparse track is still refused.
    expect(() => parse([cat(ftyp(), lsmBox(lsmSmil(withSparse)), moov(withSparse), fragment(1, [{ trackId: 3, time, samples: [payload(12, 9)], dataOffsetDelta: 1 }]))])).toThrow(/trun data/);
  });

  it('derives FourCC and CodecPrivateData from the moov when the LSM lacks them', () => {
    const [h] = parse([header]);
    if (h?.type !== 'header') throw new Error('no header');
    expect(h.tracks.map((t) => [t.info.fourCC, t.info.codecPrivateData])).toEqual([
      ['H264', '000000016742C00CDA0A37E4C044000003000400000300C83C50AA800000000168CE3C80'],
      ['AACL', '1190'],
    ]);
  });

  it.each([
    ['implicit bases (ISO: each later traf starts where the previous one ended)', false],
    ['default-base-is-moof', true],
  ])('splits a moof with two trafs into two fragments, each with its own bytes: %s', (_name, defaultBaseIsMoof) => {
    const frag = fragment(1, [{ trackId: 1, time, samples: v }, { trackId: 2, time: time + 1n, samples: a }], { defaultBaseIsMoof });
    const events = parse([cat(header, frag, mfra())]);
    expect(events.map((e) => e.type)).toEqual(['header', 'fragment', 'fragment', 'end']);
    const [f1, f2] = events.slice(1, 3).map((e) => (e.type === 'fragment' ? e.fragment : undefined));
    expect(f1).toMatchObject({ trackId: 1, sequenceNumber: 1, time, duration: 10_000_000n, dataSize: 120 });
    expect(Buffer.concat(f1!.data).equals(cat(...v))).toBe(true);
    expect(f2).toMatchObject({ trackId: 2, sequenceNumber: 1, time: time + 1n, dataSize: 30 });
    expect(Buffer.concat(f2!.data).equals(a[0]!)).toBe(true);
  });

  it('resolves sample fields from trun, then tfhd defaults, then trex defaults', () => {
    const tr: TrackSpec[] = [{ trackId: 1, kind: 'video', trex: { duration: 7, size: 3, flags: NON_SYNC } }];
    const frag = selfOffsetFragment(
      (off) => [
        mfhd(5),
        traf(
          tfhd({ trackId: 1, defaultSampleDuration: 11 }),
          trun({ dataOffset: off, firstSampleFlags: SYNC, samples: [{}, {}, {}] }),
          tfxd(0, 33),
        ),
      ],
      payload(9, 1),
    );
    const f = parse([cat(ingestHeader(tr), frag)])[1]!;
    if (f.type !== 'fragment') throw new Error('no fragment');
    expect(f.fragment.samples.toArray()).toEqual([
      { duration: 11, size: 3, flags: SYNC, compositionOffset: 0 },
      { duration: 11, size: 3, flags: NON_SYNC, compositionOffset: 0 },
      { duration: 11, size: 3, flags: NON_SYNC, compositionOffset: 0 },
    ]);
    expect(f.fragment.sequenceNumber).toBe(5);
  });

  it('reads several truns of one traf: contiguous, and at their own data offsets', () => {
    const d = [payload(5, 1), payload(6, 2), payload(7, 3)];
    const s = (b: Buffer) => ({ size: b.length, duration: 10, flags: 0 });
    const frag = selfOffsetFragment(
      (off) => [
        mfhd(1),
        traf(
          tfhd({ trackId: 1 }),
          trun({ dataOffset: off, samples: [s(d[0]!)] }),
          trun({ samples: [s(d[1]!)] }), // no data offset: right after the previous run
          trun({ dataOffset: off + 11 + 4, samples: [s(d[2]!)] }), // skips 4 bytes of padding
          tfxd(0, 30),
        ),
      ],
      d[0]!,
      d[1]!,
      Buffer.alloc(4),
      d[2]!,
    );
    const f = parse([cat(header, frag)])[1]!;
    if (f.type !== 'fragment') throw new Error('no fragment');
    expect(f.fragment.samples.toArray().map((x) => x.size)).toEqual([5, 6, 7]);
    expect(f.fragment.dataSize).toBe(18);
    expect(Buffer.concat(f.fragment.data).equals(cat(...d))).toBe(true);
  });

  it('passes sdtp and unknown uuid boxes of the traf through, and drops an ingested tfrf', () => {
    const sdtp = box('sdtp', [0, 0, 0, 0, 0x20, 0x10]);
    const other = fullUuidBox('a2394f525a9b4f14a2446c427c648df4', 0, 0);
    const frag = fragment(1, [{ trackId: 1, time, samples: v, extra: [sdtp, other, tfrf([{ time: 1, duration: 1 }])] }]);
    const f = parse([cat(header, frag)])[1]!;
    if (f.type !== 'fragment') throw new Error('no fragment');
    expect(f.fragment.extra).toEqual([sdtp, other]);
  });

  it('keeps signed composition offsets of a version 1 trun', () => {
    const frag = fragment(1, [{ trackId: 1, time, samples: v, cto: [-400000, 400000], ctoVersion: 1 }]);
    const f = parse([cat(header, frag)])[1]!;
    expect(f.type === 'fragment' && f.fragment.samples.toArray().map((x) => x.compositionOffset)).toEqual([-400000, 400000]);
  });

  it('uses tfdt when a fragment has no tfxd, and keeps the tfdt', () => {
    const events = parse([cat(header, fragment(1, [{ trackId: 1, time: 0, samples: v, decodeTime: time, noTfxd: true }]))]);
    const f = events[1]!;
    expect(f.type === 'fragment' && [f.fragment.time, f.fragment.decodeTime, f.fragment.duration]).toEqual([time, time, 10_000_000n]);
  });

  it('skips free boxes between moof and mdat while keeping data offsets relative to the moof', () => {
    const frag = fragment(1, [{ trackId: 1, time, samples: v, dataOffsetDelta: 16 }]);
    const moofSize = frag.readUInt32BE(0);
    const input = cat(header, frag.subarray(0, moofSize), box('free', Buffer.alloc(8)), frag.subarray(moofSize));
    const f = parse([input])[1]!;
    expect(f.type === 'fragment' && Buffer.concat(f.fragment.data).equals(cat(...v))).toBe(true);
  });

  it('skips free, unknown uuid and StreamManifest boxes in the header', () => {
    const input = cat(
      ftyp(),
      box('free', [1, 2]),
      fullUuidBox(UUID_STREAM_MANIFEST, 0, 0, Buffer.from('<smil><body><par><ref src="Streams(a)"/></par></body></smil>')),
      lsmBox(lsmSmil(tracks)),
      fullUuidBox('00112233445566778899aabbccddeeff', 0, 0),
      moov(tracks),
      box('skip'),
      fragment(1, [{ trackId: 1, time, samples: v }]),
    );
    expect(parse([input]).map((e) => e.type)).toEqual(['header', 'fragment']);
  });

  it('accepts a UTF-16 Live Server Manifest', () => {
    const input = cat(ftyp(), lsmBox(lsmSmil(tracks).replace('utf-8', 'utf-16'), 'utf16lebom'), moov(tracks));
    expect(parse([input]).map((e) => e.type)).toEqual(['header']);
  });

  describe('malformed input', () => {
    const one = (over: object = {}) => fragment(1, [{ trackId: 1, time, samples: v, ...over }]);
    const moofOf = (f: Buffer) => f.subarray(0, f.readUInt32BE(0));
    const headerOf = (t: TrackSpec[]) => cat(ftyp(), lsmBox(lsmSmil(t)), moov(t));
    const cases: Array<[string, string, () => Buffer]> = [
      ['a box before ftyp', 'ERR_BAD_HEADER', () => cat(lsmBox(lsmSmil(tracks)), ftyp(), moov(tracks))],
      ['a free box before ftyp', 'ERR_BAD_HEADER', () => cat(box('free'), header)],
      ['moof before moov', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox(lsmSmil(tracks)), one())],
      ['mdat before moov', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox(lsmSmil(tracks)), mdat([1]))],
      ['mfra before moov', 'ERR_BAD_HEADER', () => cat(ftyp(), mfra())],
      ['moov without a Live Server Manifest box', 'ERR_BAD_HEADER', () => cat(ftyp(), moov(tracks))],
      ['a Live Server Manifest that is not XML', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox('<smil><body>'), moov(tracks))],
      ['a Live Server Manifest without tracks', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox('<smil><body><switch/></body></smil>'), moov(tracks))],
      ['an LSM track without trackID', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox(lsmSmil(tracks).replace('name="trackID"', 'name="x"')), moov(tracks))],
      ['an LSM trackID missing from moov', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox(lsmSmil([{ trackId: 9, kind: 'video' }])), moov(tracks))],
      ['an LSM video that moov calls sound', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox(lsmSmil([{ trackId: 2, kind: 'video' }])), moov(tracks))],
      ['a trackName that is not an identifier', 'ERR_BAD_HEADER', () => headerOf([{ trackId: 1, kind: 'video', params: { trackName: 'a"b' } }])],
      ['a systemBitrate that is not a number', 'ERR_BAD_HEADER', () => cat(ftyp(), lsmBox(lsmSmil(tracks).replace('"800000"', '"fast"')), moov(tracks))],
      ['two tracks sharing name and bitrate', 'ERR_BAD_HEADER', () => headerOf([{ trackId: 1, kind: 'video', bitrate: 1 }, { trackId: 2, kind: 'video', bitrate: 1 }])],
      ['an unknown codec FourCC', 'ERR_UNKNOWN_CODEC', () => headerOf([{ trackId: 1, kind: 'video', params: { FourCC: 'XVID' } }])],
      ['an audio FourCC on a video track', 'ERR_UNKNOWN_CODEC', () => headerOf([{ trackId: 1, kind: 'video', params: { FourCC: 'AACL' } }])],
      ['an unknown sample entry and no FourCC', 'ERR_UNKNOWN_CODEC', () => headerOf([{ trackId: 1, kind: 'video', entry: visualEntry('mp4v', 16, 16) }])],
      ['H.264 without CodecPrivateData or avcC', 'ERR_UNKNOWN_CODEC', () => headerOf([{ trackId: 1, kind: 'video', entry: visualEntry('avc1', 16, 16) }])],
      ['a second ftyp', 'ERR_BAD_HEADER', () => cat(header, ftyp())],
      ['a second moov', 'ERR_BAD_HEADER', () => cat(header, moov(tracks))],
      ['a traf for an unknown track id', 'ERR_BAD_FRAGMENT', () => cat(header, fragment(1, [{ trackId: 7, time, samples: v }]))],
      ['trun data past the end of the mdat', 'ERR_BAD_FRAGMENT', () => cat(header, one({ dataOffsetDelta: 1 }))],
      ['trun data starting before the mdat payload', 'ERR_BAD_FRAGMENT', () => cat(header, one({ dataOffsetDelta: -1 }))],
      [
        'a trun without data offset (its data would start at the moof)',
        'ERR_BAD_FRAGMENT',
        () => cat(header, moof(mfhd(1), traf(tfhd({ trackId: 1 }), trun({ samples: [{ size: 4, duration: 1, flags: 0 }] }), tfxd(0, 1))), mdat([1, 2, 3, 4])),
      ],
      [
        'a tfhd with base-data-offset',
        'ERR_BAD_FRAGMENT',
        () =>
          cat(header, selfOffsetFragment((off) => [mfhd(1), traf(tfhd({ trackId: 1, baseDataOffset: 0 }), trun({ dataOffset: off, samples: [{ size: 1, duration: 1, flags: 0 }] }), tfxd(0, 1))], [1])),
      ],
      [
        'samples without size and no default anywhere',
        'ERR_BAD_FRAGMENT',
        () =>
          cat(
            ftyp(),
            lsmBox(lsmSmil(tracks)),
            moov(tracks, { mvex: false }),
            selfOffsetFragment((off) => [mfhd(1), traf(tfhd({ trackId: 1 }), trun({ dataOffset: off, samples: [{ duration: 1, flags: 0 }] }), tfxd(0, 1))], [1]),
          ),
      ],
      ['a fragment with neither tfxd nor tfdt', 'ERR_BAD_FRAGMENT', () => cat(header, one({ noTfxd: true }))],
      ['a fragment of duration 0', 'ERR_BAD_FRAGMENT', () => cat(header, one({ duration: 0 }))],
      ['a tfdt-only fragment whose samples last 0', 'ERR_BAD_FRAGMENT', () => cat(header, one({ duration: 0, decodeTime: 5, noTfxd: true }))],
      ['a fragment without samples', 'ERR_BAD_FRAGMENT', () => cat(header, fragment(1, [{ trackId: 1, time, samples: [] }]))],
      ['a moof without traf', 'ERR_BAD_FRAGMENT', () => cat(header, moof(mfhd(1)), mdat([1]))],
      ['a traf without tfhd', 'ERR_BAD_FRAGMENT', () => cat(header, moof(mfhd(1), traf(tfxd(0, 1))), mdat([1]))],
      ['a saio box in the traf', 'ERR_BAD_FRAGMENT', () => cat(header, one({ extra: [box('saio', u32(0), u32(0))] }))],
      ['moof followed by moof', 'ERR_BAD_FRAGMENT', () => cat(header, moofOf(one()), one())],
      ['mdat without moof', 'ERR_BAD_FRAGMENT', () => cat(header, mdat([1, 2]))],
      ['mfra between moof and mdat', 'ERR_BAD_FRAGMENT', () => cat(header, moofOf(one()), mfra())],
      ['a fragment after the mfra', 'ERR_BAD_FRAGMENT', () => cat(header, mfra(), one())],
      ['any box after the mfra', 'ERR_BAD_FRAGMENT', () => cat(header, mfra(), box('free'))],
      [
        'a trun sample count larger than the box',
        'ERR_BAD_BOX',
        () =>
          cat(header, selfOffsetFragment((off) => [mfhd(1), traf(tfhd({ trackId: 1 }), trun({ dataOffset: off, samples: [{ size: 1, duration: 1, flags: 0 }], count: 1000 }), tfxd(0, 1))], [1])),
      ],
      ['a tfdt cut short', 'ERR_BAD_BOX', () => cat(header, moof(mfhd(1), traf(tfhd({ trackId: 1 }), box('tfdt', [1, 0, 0, 0]))), mdat([1]))],
      ['a traf child overrunning the traf', 'ERR_BAD_BOX', () => cat(header, moof(mfhd(1), traf(u32(100), Buffer.from('tfhd'))), mdat([1]))],
      ['a moof at the end without its mdat', 'ERR_TRUNCATED', () => cat(header, moofOf(one()))],
      ['an input cut inside an mdat', 'ERR_TRUNCATED', () => cat(header, one()).subarray(0, -1)],
    ];

    it.each(cases)('%s -> %s', (_name, code, build) => {
      const input = build();
      expect(errorCode(input)).toBe(code);
      // The same error whatever the chunking.
      const p = new SmoothIngestParser({ maxBoxSize: MAX });
      let got: string | undefined;
      try {
        for (let i = 0; i < input.length; i += 13) p.push(input.subarray(i, i + 13));
        p.end();
      } catch (err) {
        got = (err as SmoothError).code;
      }
      expect(got).toBe(code);
    });

    it('a box above maxBoxSize -> ERR_BOX_TOO_LARGE', () => {
      expect(errorCode(cat(header, fragment(1, [{ trackId: 1, time, samples: [payload(5000, 1)] }])), 4096)).toBe('ERR_BOX_TOO_LARGE');
    });

    it('errors are SmoothErrors with a printable message', () => {
      try {
        parse([cat(u32(8), Buffer.from([0x1b, 0x5b, 0x32, 0x4a]))]);
        throw new Error('no error');
      } catch (err) {
        expect(err).toBeInstanceOf(SmoothError);
        expect((err as SmoothError).code).toBe('ERR_BAD_HEADER');
        expect((err as Error).message).toContain('\\x1b[2J');
      }
    });
  });
});
