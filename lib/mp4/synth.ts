/**
 * Movie headers for tracks known only from a client manifest (a pulled upstream, like a player that
 * builds its init segment from the manifest): a `trak` whose sample entry is rebuilt from the
 * QualityLevel's FourCC and CodecPrivateData, and its `trex`. The ingest reads them back to the same
 * description, so a pulled point's manifest says what the upstream's says.
 *
 * Layouts: ISO 14496-12 §8.3–8.7 (tkhd, mdhd, hdlr, minf, stbl), ISO 14496-15 §5.3.3 (avcC),
 * ISO 14496-1 §7.2.6 and 14496-14 (esds), ISO 14496-3 §1.6.2.1 (AudioSpecificConfig).
 */
import { SmoothError } from '../errors';
import type { TrackInfo } from '../model';
import { makeBox, makeFullBox } from './writer';

/** FourCCs whose sample entry can be rebuilt from the manifest alone. */
export const SYNTHESIZABLE_FOURCC: readonly string[] = ['H264', 'AVC1', 'DAVC', 'X264', 'AACL', 'AACH', 'AACP', 'AAC'];

/** Of those, the ones of each track type: `avc1` for video, `mp4a` for audio. */
const FOURCC_OF: Readonly<Record<TrackInfo['type'], readonly string[]>> = {
  video: ['H264', 'AVC1', 'DAVC', 'X264'],
  audio: ['AACL', 'AACH', 'AACP', 'AAC'],
  text: [],
};

const MATRIX = (() => {
  const m = Buffer.alloc(36);
  m.writeUInt32BE(0x00010000, 0);
  m.writeUInt32BE(0x00010000, 16);
  m.writeUInt32BE(0x40000000, 32);
  return m;
})();

const u8 = (v: number): Buffer => Buffer.from([v & 0xff]);
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function unsupported(info: TrackInfo, why: string): SmoothError {
  return new SmoothError('ERR_UNKNOWN_CODEC', `${info.type} ${info.name} ${info.bitrate}: ${why}`);
}

/** The NAL units of Annex B bytes (`00 00 01` or `00 00 00 01` start codes). */
function nalUnits(annexB: Buffer): Buffer[] {
  const starts: Array<[number, number]> = [];
  for (let i = 0; i + 2 < annexB.length; i++) {
    if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 1) {
      starts.push([i, i + 3]);
      i += 2;
    }
  }
  return starts.map(([, from], k) => {
    let end = k + 1 < starts.length ? starts[k + 1]![0] : annexB.length;
    // A four-byte start code leaves a zero before the next three-byte one.
    while (end > from && annexB[end - 1] === 0 && k + 1 < starts.length) end--;
    return annexB.subarray(from, end);
  });
}

/** Profiles whose avcC carries chroma format and bit depths (ISO 14496-15 §5.3.3.1.2). */
const HIGH_PROFILES = [100, 110, 122, 144];

/**
 * The avcC fields High profiles add, read from the SPS: chroma_format_idc and the luma and chroma bit
 * depths, and no SPS extension. Empty for other profiles, or an SPS too short to read them.
 */
function highProfileFields(sps: Buffer): Buffer {
  if (!HIGH_PROFILES.includes(sps[1]!)) return Buffer.alloc(0);
  // The RBSP: emulation prevention bytes (00 00 03) removed.
  const rbsp: number[] = [];
  for (let i = 1; i < sps.length; i++) {
    if (i >= 3 && sps[i] === 3 && sps[i - 1] === 0 && sps[i - 2] === 0) continue;
    rbsp.push(sps[i]!);
  }
  let bit = 3 * 8; // after profile_idc, constraint flags, level_idc
  const readBit = (): number => {
    const byte = rbsp[bit >> 3];
    if (byte === undefined) throw new RangeError('SPS ends early');
    return (byte >> (7 - (bit++ & 7))) & 1;
  };
  const ue = (): number => {
    let zeros = 0;
    while (readBit() === 0) if (++zeros > 31) throw new RangeError('bad exp-Golomb code');
    let v = 0;
    for (let i = 0; i < zeros; i++) v = v * 2 + readBit();
    return 2 ** zeros - 1 + v;
  };
  try {
    ue(); // seq_parameter_set_id
    const chroma = ue();
    if (chroma === 3) readBit(); // separate_colour_plane_flag
    const lumaDepth = ue();
    const chromaDepth = ue();
    if (chroma > 3 || lumaDepth > 7 || chromaDepth > 7) return Buffer.alloc(0);
    return Buffer.from([0xfc | chroma, 0xf8 | lumaDepth, 0xf8 | chromaDepth, 0]);
  } catch {
    return Buffer.alloc(0);
  }
}

/** `avc1` with the `avcC` that CodecPrivateData (`00000001 SPS … 00000001 PPS …`) describes. */
function avcEntry(info: TrackInfo): Buffer {
  const nals = nalUnits(Buffer.from(info.codecPrivateData, 'hex'));
  const sps = nals.filter((n) => (n[0]! & 0x1f) === 7);
  const pps = nals.filter((n) => (n[0]! & 0x1f) === 8);
  if (sps.length === 0 || pps.length === 0 || sps.length > 31 || pps.length > 255) {
    throw unsupported(info, 'CodecPrivateData does not hold SPS and PPS NAL units');
  }
  if (sps.some((n) => n.length < 4 || n.length > 0xffff) || pps.some((n) => n.length > 0xffff)) {
    throw unsupported(info, 'CodecPrivateData holds a malformed SPS or PPS');
  }
  const nalLength = info.nalUnitLengthField ?? 4;
  if (![1, 2, 4].includes(nalLength)) throw unsupported(info, `NALUnitLengthField ${nalLength} is not 1, 2 or 4`);
  const first = sps[0]!;
  const avcC = makeBox(
    'avcC',
    u8(1),
    u8(first[1]!),
    u8(first[2]!),
    u8(first[3]!),
    u8(0xfc | (nalLength - 1)),
    u8(0xe0 | sps.length),
    ...sps.flatMap((n) => [u16(n.length), n]),
    u8(pps.length),
    ...pps.flatMap((n) => [u16(n.length), n]),
    highProfileFields(first),
  );
  const width = info.maxWidth ?? 0;
  const height = info.maxHeight ?? 0;
  return makeBox(
    'avc1',
    Buffer.alloc(6),
    u16(1), // data_reference_index
    Buffer.alloc(16),
    u16(width),
    u16(height),
    u32(0x00480000), // 72 dpi
    u32(0x00480000),
    u32(0),
    u16(1), // frame_count
    Buffer.alloc(32), // compressorname
    u16(0x0018),
    u16(0xffff),
    avcC,
  );
}

/** Sampling frequency indexes of ISO 14496-3 Table 1.18. */
const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** The AudioSpecificConfig: CodecPrivateData, or AAC-LC built from the rate and channels when it is empty. */
function audioSpecificConfig(info: TrackInfo): Buffer {
  if (info.codecPrivateData) return Buffer.from(info.codecPrivateData, 'hex');
  const index = AAC_RATES.indexOf(info.samplingRate ?? 0);
  const channels = info.channels ?? 0;
  if (index < 0 || channels < 1 || channels > 7) throw unsupported(info, 'no CodecPrivateData, and no AAC sampling rate and channels to build one');
  return u16((2 << 11) | (index << 7) | (channels << 3));
}

/** An MPEG-4 descriptor: tag, then its size in one byte (every descriptor here is under 128 bytes). */
function descriptor(tag: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  return Buffer.concat([u8(tag), u8(body.length), body]);
}

/** `mp4a` with the `esds` that carries the AudioSpecificConfig. */
function aacEntry(info: TrackInfo): Buffer {
  const asc = audioSpecificConfig(info);
  if (asc.length < 2 || asc.length > 64) throw unsupported(info, 'CodecPrivateData is not an AudioSpecificConfig');
  const decoderConfig = descriptor(
    4,
    u8(0x40), // MPEG-4 Audio
    u8(0x15), // audio stream
    Buffer.alloc(3), // bufferSizeDB
    u32(info.bitrate),
    u32(info.bitrate),
    descriptor(5, asc),
  );
  const esds = makeFullBox('esds', 0, 0, descriptor(3, u16(0), u8(0), decoderConfig, descriptor(6, u8(2))));
  const rate = info.samplingRate ?? 0;
  return makeBox(
    'mp4a',
    Buffer.alloc(6),
    u16(1),
    Buffer.alloc(8),
    u16(info.channels ?? 2),
    u16(info.bitsPerSample ?? 16),
    u32(0),
    u32(rate < 0x10000 ? rate * 0x10000 : 0),
    esds,
  );
}

/** Packs an ISO 639-2/T code into mdhd's 15 bits (`und` for anything else). */
function packLanguage(language: string | undefined): number {
  const code = language && /^[a-z]{3}$/.test(language) ? language : 'und';
  return ((code.charCodeAt(0) - 0x60) << 10) | ((code.charCodeAt(1) - 0x60) << 5) | (code.charCodeAt(2) - 0x60);
}

/**
 * The `trak` (empty sample tables, as a fragmented stream has) and `trex` of a track described only by
 * its manifest entry, numbered `trackId`.
 * @throws SmoothError ERR_UNKNOWN_CODEC for a FourCC outside {@link SYNTHESIZABLE_FOURCC} or codec data
 *   that does not describe its codec
 */
export function synthesizeTrack(info: TrackInfo, trackId: number): { trak: Buffer; trex: Buffer } {
  // The FourCC must fit the type too: an audio level saying H264 (or video saying AACL) would get a sample
  // entry the ingest refuses with the whole header, when only that track should be left out.
  if (!SYNTHESIZABLE_FOURCC.includes(info.fourCC) || !FOURCC_OF[info.type].includes(info.fourCC)) {
    throw unsupported(info, `FourCC ${info.fourCC} cannot be described from a manifest alone`);
  }
  const video = info.type === 'video';
  const entry = video ? avcEntry(info) : aacEntry(info);
  const width = video ? (info.displayWidth ?? info.maxWidth ?? 0) : 0;
  const height = video ? (info.displayHeight ?? info.maxHeight ?? 0) : 0;
  const tkhd = makeFullBox(
    'tkhd',
    0,
    3, // enabled, in movie
    u32(0),
    u32(0),
    u32(trackId),
    u32(0),
    u32(0), // duration
    Buffer.alloc(8),
    u16(0),
    u16(0),
    u16(video ? 0 : 0x0100), // volume
    u16(0),
    MATRIX,
    u32(width * 0x10000),
    u32(height * 0x10000),
  );
  const mdhd = makeFullBox('mdhd', 0, 0, u32(0), u32(0), u32(info.timescale), u32(0), u16(packLanguage(info.language)), u16(0));
  const hdlr = makeFullBox('hdlr', 0, 0, u32(0), Buffer.from(video ? 'vide' : 'soun', 'latin1'), Buffer.alloc(12), Buffer.from(video ? 'Video\0' : 'Sound\0', 'latin1'));
  const header = video ? makeFullBox('vmhd', 0, 1, Buffer.alloc(8)) : makeFullBox('smhd', 0, 0, u32(0));
  const stbl = makeBox(
    'stbl',
    makeFullBox('stsd', 0, 0, u32(1), entry),
    makeFullBox('stts', 0, 0, u32(0)),
    makeFullBox('stsc', 0, 0, u32(0)),
    makeFullBox('stsz', 0, 0, u32(0), u32(0)),
    makeFullBox('stco', 0, 0, u32(0)),
  );
  const dinf = makeBox('dinf', makeFullBox('dref', 0, 0, u32(1), makeFullBox('url ', 0, 1)));
  const trak = makeBox('trak', tkhd, makeBox('mdia', mdhd, hdlr, makeBox('minf', header, dinf, stbl)));
  const trex = makeFullBox('trex', 0, 0, u32(trackId), u32(1), u32(0), u32(0), u32(0));
  return { trak, trex };
}

/** An `mvhd` (version 0) whose tracks are numbered below `nextTrackId`. */
export function synthesizeMvhd(timescale: number, nextTrackId: number): Buffer {
  return makeFullBox('mvhd', 0, 0, u32(0), u32(0), u32(timescale), u32(0), u32(0x00010000), u16(0x0100), Buffer.alloc(10), MATRIX, Buffer.alloc(24), u32(nextTrackId));
}
