import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createFile, MP4BoxBuffer, Movie } from 'mp4box';
import {
  liveServerManifestText,
  parseAvcC,
  parseEsds,
  parseMfhd,
  parseMoov,
  parseTfdt,
  parseTfhd,
  parseTfrf,
  parseTfxd,
  parseTrun,
  TFHD,
  TRUN,
} from '../../../lib/mp4/boxes';
import { Box, BoxReader } from '../../../lib/mp4/reader';
import {
  ASC,
  PPS,
  SPS,
  audioEntry,
  avcC,
  box,
  cat,
  esds,
  fullBox,
  fullUuidBox,
  lsmBox,
  LsmEncoding,
  mdhd,
  mfhd,
  moov,
  mvhd,
  tfdt,
  tfhd,
  tfrf,
  tfxd,
  trun,
  u32,
  u64,
  UUID_LSM,
  UUID_TFRF,
  UUID_TFXD,
  visualEntry,
} from '../../helpers/fmp4';

const FIXTURE = readFileSync(path.join(__dirname, '../../fixtures/ffmpeg-push-all.bin'));

/** Reads one complete box from bytes. */
function one(bytes: Buffer): Box {
  const reader = new BoxReader({ maxBoxSize: 1 << 24 });
  const boxes = [...reader.push(bytes), ...reader.end()];
  expect(boxes).toHaveLength(1);
  return boxes[0]!;
}

function fixtureBoxes(): Box[] {
  const reader = new BoxReader({ maxBoxSize: 1 << 24 });
  return [...reader.push(FIXTURE), ...reader.end()];
}

const badBox = expect.objectContaining({ name: 'SmoothError', code: 'ERR_BAD_BOX' });

describe('parseTfhd', () => {
  it('reads track_ID alone when no optional flag is set', () => {
    expect(parseTfhd(one(tfhd({ trackId: 7 })))).toEqual({
      flags: 0,
      trackId: 7,
      baseDataOffset: undefined,
      sampleDescriptionIndex: undefined,
      defaultSampleDuration: undefined,
      defaultSampleSize: undefined,
      defaultSampleFlags: undefined,
    });
  });

  it('reads every optional field, in order, with base-data-offset as an exact u64', () => {
    const t = parseTfhd(
      one(
        tfhd({
          trackId: 2,
          flags: TFHD.DURATION_IS_EMPTY | TFHD.DEFAULT_BASE_IS_MOOF,
          baseDataOffset: 2n ** 60n + 3n,
          sampleDescriptionIndex: 4,
          defaultSampleDuration: 400000,
          defaultSampleSize: 1234,
          defaultSampleFlags: 0x01010000,
        }),
      ),
    );
    expect(t).toEqual({
      flags: 0x03003b,
      trackId: 2,
      baseDataOffset: 2n ** 60n + 3n,
      sampleDescriptionIndex: 4,
      defaultSampleDuration: 400000,
      defaultSampleSize: 1234,
      defaultSampleFlags: 0x01010000,
    });
  });

  it.each([
    ['sample-description-index', { sampleDescriptionIndex: 9 }, 'sampleDescriptionIndex', 9],
    ['default-sample-duration', { defaultSampleDuration: 333 }, 'defaultSampleDuration', 333],
    ['default-sample-size', { defaultSampleSize: 0xffffffff }, 'defaultSampleSize', 0xffffffff],
    ['default-sample-flags', { defaultSampleFlags: 0x02000000 }, 'defaultSampleFlags', 0x02000000],
  ] as const)('reads %s on its own', (_name, spec, key, value) => {
    const t = parseTfhd(one(tfhd({ trackId: 1, ...spec })));
    expect(t[key]).toBe(value);
    for (const other of ['baseDataOffset', 'sampleDescriptionIndex', 'defaultSampleDuration', 'defaultSampleSize', 'defaultSampleFlags'] as const) {
      if (other !== key) expect(t[other]).toBeUndefined();
    }
  });

  it('rejects a tfhd whose flags promise fields it does not hold', () => {
    expect(() => parseTfhd(one(fullBox('tfhd', 0, TFHD.DEFAULT_SAMPLE_SIZE, u32(1))))).toThrow(badBox);
    expect(() => parseTfhd(one(fullBox('tfhd', 0, 0)))).toThrow(badBox);
  });
});

describe('parseTrun', () => {
  it('reads only the fields its flags announce', () => {
    const t = parseTrun(one(trun({ samples: [{ size: 10 }, { size: 20 }] })));
    expect(t).toEqual({
      version: 0,
      flags: TRUN.SAMPLE_SIZE,
      dataOffset: undefined,
      firstSampleFlags: undefined,
      samples: [
        { duration: undefined, size: 10, flags: undefined, compositionOffset: 0 },
        { duration: undefined, size: 20, flags: undefined, compositionOffset: 0 },
      ],
    });
  });

  it('reads data offset, first-sample flags and all per-sample fields', () => {
    const t = parseTrun(
      one(
        trun({
          dataOffset: 1024,
          firstSampleFlags: 0x02000000,
          samples: [
            { duration: 400000, size: 100, flags: 0x01010000, cto: 800000 },
            { duration: 400001, size: 101, flags: 0x01010000, cto: 0 },
          ],
        }),
      ),
    );
    expect(t.flags).toBe(TRUN.DATA_OFFSET | TRUN.FIRST_SAMPLE_FLAGS | TRUN.SAMPLE_DURATION | TRUN.SAMPLE_SIZE | TRUN.SAMPLE_FLAGS | TRUN.SAMPLE_CTO);
    expect(t.dataOffset).toBe(1024);
    expect(t.firstSampleFlags).toBe(0x02000000);
    expect(t.samples).toEqual([
      { duration: 400000, size: 100, flags: 0x01010000, compositionOffset: 800000 },
      { duration: 400001, size: 101, flags: 0x01010000, compositionOffset: 0 },
    ]);
  });

  it('reads the data offset as signed', () => {
    expect(parseTrun(one(trun({ dataOffset: -8, samples: [{ size: 1 }] }))).dataOffset).toBe(-8);
  });

  it('reads version 0 composition offsets as unsigned and version 1 as signed', () => {
    const v0 = parseTrun(one(trun({ version: 0, samples: [{ cto: 0x80000000 }, { cto: 5 }] })));
    expect(v0.samples.map((s) => s.compositionOffset)).toEqual([0x80000000, 5]);
    const v1 = parseTrun(one(trun({ version: 1, samples: [{ cto: -400000 }, { cto: 2147483647 }, { cto: -2147483648 }] })));
    expect(v1.version).toBe(1);
    expect(v1.samples.map((s) => s.compositionOffset)).toEqual([-400000, 2147483647, -2147483648]);
  });

  it('accepts zero samples', () => {
    expect(parseTrun(one(trun({ dataOffset: 8, samples: [] }))).samples).toEqual([]);
  });

  it('rejects a sample count larger than the box holds, before allocating', () => {
    expect(() => parseTrun(one(trun({ samples: [{ size: 1 }], count: 2 })))).toThrow(badBox);
    expect(() => parseTrun(one(trun({ samples: [{ size: 1, duration: 1 }], count: 0xffffffff })))).toThrow(badBox);
    // No per-sample fields: the count is still bounded by the box.
    expect(() => parseTrun(one(fullBox('trun', 0, 0, u32(0xffffffff))))).toThrow(badBox);
  });

  it('rejects a truncated header', () => {
    expect(() => parseTrun(one(fullBox('trun', 0, TRUN.DATA_OFFSET, u32(0))))).toThrow(badBox);
  });
});

describe('parseTfdt and parseMfhd', () => {
  it('reads a version 0 (32-bit) decode time', () => {
    expect(parseTfdt(one(tfdt(0xfffffffe, 0)))).toBe(0xfffffffen);
  });

  it('reads a version 1 (64-bit) decode time exactly, above 2^53', () => {
    expect(parseTfdt(one(tfdt(17_640_000_000_000_001n, 1)))).toBe(17_640_000_000_000_001n);
    expect(parseTfdt(one(tfdt(2n ** 64n - 1n, 1)))).toBe(2n ** 64n - 1n);
  });

  it('rejects a truncated tfdt', () => {
    expect(() => parseTfdt(one(fullBox('tfdt', 1, 0, u32(1))))).toThrow(badBox);
  });

  it('reads the mfhd sequence number', () => {
    expect(parseMfhd(one(mfhd(0xfffffff0)))).toBe(0xfffffff0);
  });
});

describe('parseTfxd', () => {
  it('reads version 0 (32-bit fields)', () => {
    const b = one(tfxd(4_000_000_000, 20_000_000, 0));
    expect(b.data).toHaveLength(36);
    expect(b.uuid).toBe(UUID_TFXD);
    expect(parseTfxd(b)).toEqual({ version: 0, time: 4_000_000_000n, duration: 20_000_000n });
  });

  it('reads version 1 (64-bit fields), keeping a time above 2^53 exact', () => {
    const b = one(tfxd(17_640_000_000_000_001n, 20_000_000n, 1));
    expect(b.data).toHaveLength(44);
    expect(parseTfxd(b)).toEqual({ version: 1, time: 17_640_000_000_000_001n, duration: 20_000_000n });
  });

  it('reads a negative version 1 time (ffmpeg writes AAC priming as a negative start)', () => {
    expect(parseTfxd(one(tfxd(-213_333n, 10_240_000n, 1))).time).toBe(-213_333n);
  });

  it('reads an unknown later version with the version 1 layout', () => {
    const b = one(fullUuidBox(UUID_TFXD, 2, 0, u64(123), u64(45), u64(6)));
    expect(parseTfxd(b)).toEqual({ version: 2, time: 123n, duration: 45n });
  });

  it('rejects a truncated tfxd', () => {
    expect(() => parseTfxd(one(fullUuidBox(UUID_TFXD, 1, 0, u64(1))))).toThrow(badBox);
    expect(() => parseTfxd(one(fullUuidBox(UUID_TFXD, 0, 0, u32(1))))).toThrow(badBox);
  });

  it('reads every tfxd of the fixture', () => {
    const times: bigint[] = [];
    for (const b of fixtureBoxes()) {
      if (b.type !== 'moof') continue;
      const start = b.data.indexOf(Buffer.from(UUID_TFXD, 'hex'));
      times.push(parseTfxd(one(b.data.subarray(start - 8, start - 8 + b.data.readUInt32BE(start - 8)))).time);
    }
    expect(times.slice(0, 3)).toEqual([0n, 0n, -213_333n]);
  });
});

describe('parseTfrf', () => {
  it('reads version 1 entries with a one-byte count', () => {
    const entries = [
      { time: 17_640_000_000_000_001n, duration: 20_000_000n },
      { time: 17_640_000_020_000_001n, duration: 19_999_999n },
    ];
    const b = one(tfrf(entries, 1));
    expect(b.uuid).toBe(UUID_TFRF);
    expect(b.data).toHaveLength(29 + 2 * 16);
    expect(parseTfrf(b)).toEqual(entries);
  });

  it('reads version 0 entries', () => {
    const b = one(tfrf([{ time: 10, duration: 2 }], 0));
    expect(b.data).toHaveLength(29 + 8);
    expect(parseTfrf(b)).toEqual([{ time: 10n, duration: 2n }]);
  });

  it('reads an empty tfrf', () => {
    expect(parseTfrf(one(tfrf([], 1)))).toEqual([]);
  });

  it('rejects a count larger than the entries present', () => {
    expect(() => parseTfrf(one(fullUuidBox(UUID_TFRF, 1, 0, [2], u64(1), u64(2))))).toThrow(badBox);
  });
});

describe('parseAvcC and parseEsds', () => {
  it('reads SPS, PPS and the NAL length size', () => {
    const a = parseAvcC(one(avcC([SPS], [PPS, Buffer.from([0x68, 1])], 2)));
    expect(a.sps).toEqual([SPS]);
    expect(a.pps).toEqual([PPS, Buffer.from([0x68, 1])]);
    expect(a.nalLengthSize).toBe(2);
    expect(a.profileIndication).toBe(0x42);
  });

  it('rejects an avcC whose NAL length overruns the box', () => {
    const good = avcC([SPS], [PPS]);
    const cut = cat(u32(good.length - 2), good.subarray(4, good.length - 2));
    expect(() => parseAvcC(one(cut))).toThrow(badBox);
  });

  it('reads object type, average bitrate and AudioSpecificConfig', () => {
    expect(parseEsds(one(esds(ASC, { avgBitrate: 96000 })))).toEqual({
      objectTypeIndication: 0x40,
      avgBitrate: 96000,
      audioSpecificConfig: ASC,
    });
  });

  it('rejects a descriptor that overruns the box', () => {
    expect(() => parseEsds(one(fullBox('esds', 0, 0, [3, 0x7f, 0, 0, 0])))).toThrow(badBox);
  });
});

describe('parseMoov', () => {
  /** mp4box.js as an independent reader of the same header. */
  function oracle(header: Buffer): Movie {
    const file = createFile();
    let info: Movie | undefined;
    file.onReady = (i) => (info = i);
    const ab = MP4BoxBuffer.fromArrayBuffer(header.buffer.slice(header.byteOffset, header.byteOffset + header.length), 0);
    file.appendBuffer(ab);
    file.flush();
    if (!info) throw new Error('mp4box did not parse the header');
    return info;
  }

  it('matches mp4box on the fixture moov', () => {
    const boxes = fixtureBoxes();
    const m = boxes.find((b) => b.type === 'moov')!;
    const parsed = parseMoov(m);
    const end = boxes.indexOf(m);
    const info = oracle(Buffer.concat(boxes.slice(0, end + 1).map((b) => b.data)));
    expect(parsed.timescale).toBe(info.timescale);
    expect(parsed.tracks.map((t) => t.trackId)).toEqual(info.tracks.map((t) => t.id));
    for (const t of parsed.tracks) {
      const o = info.tracks.find((x) => x.id === t.trackId)!;
      expect(t.timescale).toBe(o.timescale);
      expect(t.language).toBe(o.language);
      if (o.video) {
        expect(t.handler).toBe('vide');
        expect([t.entry?.width, t.entry?.height]).toEqual([o.video.width, o.video.height]);
        // mp4box's codec string avc1.PPCCLL comes from the avcC: compare with our SPS.
        const sps = t.entry!.avc!.sps[0]!;
        expect(`avc1.${sps.subarray(1, 4).toString('hex')}`).toBe(o.codec);
        expect(t.entry!.avc!.nalLengthSize).toBe(4);
      } else {
        expect(t.handler).toBe('soun');
        expect(t.entry?.channels).toBe(o.audio!.channel_count);
        expect(t.entry?.sampleRate).toBe(o.audio!.sample_rate);
        expect(t.entry?.sampleSize).toBe(o.audio!.sample_size);
        const aot = t.entry!.audioSpecificConfig![0]! >> 3;
        expect(`mp4a.${t.entry!.objectTypeIndication!.toString(16)}.${aot}`).toBe(o.codec);
      }
    }
  });

  it('reads the fixture tracks as ffmpeg wrote them', () => {
    const parsed = parseMoov(fixtureBoxes().find((b) => b.type === 'moov')!);
    expect(parsed.timescale).toBe(1000);
    expect(parsed.tracks.map((t) => [t.trackId, t.handler, t.timescale, t.entry?.format])).toEqual([
      [1, 'vide', 10_000_000, 'avc1'],
      [2, 'vide', 10_000_000, 'avc1'],
      [3, 'soun', 10_000_000, 'mp4a'],
    ]);
    expect(parsed.tracks[2]!.entry!.audioSpecificConfig!.toString('hex')).toBe('118856e500');
    expect(parsed.tracks.map((t) => t.trex?.trackId)).toEqual([1, 2, 3]);
  });

  it('reads version 1 mvhd/tkhd/mdhd, languages and trex defaults', () => {
    const mvhd1 = fullBox('mvhd', 1, 0, u64(0), u64(0), u32(600), u64(0), Buffer.alloc(80));
    const tkhd1 = fullBox('tkhd', 1, 7, u64(0), u64(0), u32(9), u32(0), u64(0), Buffer.alloc(60));
    const trak = box(
      'trak',
      tkhd1,
      box('mdia', mdhd(48000, 'eng', 1), fullBox('hdlr', 0, 0, u32(0), Buffer.from('soun'), Buffer.alloc(13)),
        box('minf', box('stbl', fullBox('stsd', 0, 0, u32(1), audioEntry('mp4a', 6, 48000, esds(ASC)))))),
    );
    const m = box('moov', mvhd1, trak, box('mvex', fullBox('trex', 0, 0, u32(9), u32(1), u32(1024), u32(55), u32(0x02000000))));
    const parsed = parseMoov(one(m));
    expect(parsed.timescale).toBe(600);
    expect(parsed.tracks).toHaveLength(1);
    expect(parsed.tracks[0]).toMatchObject({
      trackId: 9,
      handler: 'soun',
      timescale: 48000,
      language: 'eng',
      entry: { format: 'mp4a', channels: 6, sampleRate: 48000 },
      trex: { trackId: 9, defaultSampleDescriptionIndex: 1, defaultSampleDuration: 1024, defaultSampleSize: 55, defaultSampleFlags: 0x02000000 },
    });
  });

  it('reads a helper-built video track', () => {
    const m = moov([{ trackId: 1, kind: 'video', width: 1280, height: 720, entry: visualEntry('avc1', 1280, 720, avcC([SPS], [PPS])) }]);
    const t = parseMoov(one(m)).tracks[0]!;
    expect(t.entry).toMatchObject({ format: 'avc1', width: 1280, height: 720, avc: { sps: [SPS], pps: [PPS] } });
  });

  it('leaves the entry undefined for a trak without stsd, and trex undefined without mvex', () => {
    const trak = box('trak', fullBox('tkhd', 0, 7, u32(0), u32(0), u32(4), Buffer.alloc(68)),
      box('mdia', mdhd(1000), fullBox('hdlr', 0, 0, u32(0), Buffer.from('text'), Buffer.alloc(13))));
    const parsed = parseMoov(one(box('moov', mvhd(), trak)));
    expect(parsed.tracks[0]).toMatchObject({ trackId: 4, handler: 'text', entry: undefined, trex: undefined });
  });

  it('rejects a trak without tkhd or mdia', () => {
    expect(() => parseMoov(one(box('moov', mvhd(), box('trak', box('mdia')))))).toThrow(badBox);
  });
});

describe('liveServerManifestText', () => {
  const smil = '<?xml version="1.0"?><smil xmlns="http://www.w3.org/2001/SMIL20/Language"><head><meta name="title" content="Ünïcödé ✓ 𝄞"/></head></smil>';

  it.each<[LsmEncoding]>([['utf8'], ['utf8bom'], ['utf16le'], ['utf16lebom'], ['utf16be'], ['utf16bebom']])(
    'decodes %s',
    (encoding) => {
      const b = one(lsmBox(smil, encoding));
      expect(b.uuid).toBe(UUID_LSM);
      expect(liveServerManifestText(b)).toBe(smil);
    },
  );

  it.each<[LsmEncoding, number]>([
    ['utf8', 1],
    ['utf8', 4],
    ['utf8bom', 2],
    ['utf16le', 2],
    ['utf16le', 3],
    ['utf16lebom', 2],
    ['utf16be', 2],
  ])('strips trailing NULs (%s, %i NUL bytes)', (encoding, nuls) => {
    expect(liveServerManifestText(one(lsmBox(smil, encoding, Buffer.alloc(nuls))))).toBe(smil);
  });

  it('decodes the fixture LSM box (ffmpeg: UTF-8 with a declaration)', () => {
    const text = liveServerManifestText(fixtureBoxes()[1]!);
    expect(text.startsWith('<?xml version="1.0" encoding="utf-8"?>')).toBe(true);
    expect(text).toContain('<param name="trackName" value="audio" valuetype="data"/>');
  });

  it('returns an empty string for an empty payload', () => {
    expect(liveServerManifestText(one(lsmBox('')))).toBe('');
  });

  it('rejects a box without version and flags', () => {
    expect(() => liveServerManifestText(one(box('uuid', Buffer.from(UUID_LSM, 'hex'), [0])))).toThrow(badBox);
  });
});
