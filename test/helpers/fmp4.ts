/**
 * A small ISO BMFF / Smooth Streaming box builder for unit tests. Everything is built in code so a test
 * shows exactly which bytes it feeds the parsers. All integers are big-endian.
 *
 * Layouts: ISO 14496-12 (boxes), ISO 14496-15 (avcC), ISO 14496-1 (esds), MS-SSTR 2.2.4.4/2.2.4.5
 * (tfxd, tfrf), MS-SSTR 2.2.7.3 (Live Server Manifest box).
 */

/** Anything a box payload can be made of. */
export type Bytes = Buffer | Uint8Array | readonly number[];

export const UUID_LSM = 'a5d40b30e81411ddba2f0800200c9a66';
export const UUID_STREAM_MANIFEST = '3c2fe51befee40a3ae815300199dc348';
export const UUID_TFXD = '6d1d9b0542d544e680e2141daff757b2';
export const UUID_TFRF = 'd4807ef2ca3946958e5426cb9e46a79f';

/** Sample flags as ffmpeg writes them: sync = depends_on 2; non-sync = depends_on 1 | is_non_sync. */
export const SYNC = 0x02000000;
export const NON_SYNC = 0x01010000;

function buf(b: Bytes): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b as Uint8Array);
}

export function cat(...parts: Bytes[]): Buffer {
  return Buffer.concat(parts.map(buf));
}

export const u8 = (v: number): Buffer => Buffer.from([v & 0xff]);
export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
export function u24(v: number): Buffer {
  const b = Buffer.alloc(3);
  b.writeUIntBE(v, 0, 3);
  return b;
}
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
export function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
}
export function u64(v: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(v)));
  return b;
}
export const str = (s: string): Buffer => Buffer.from(s, 'latin1');
export const zeros = (n: number): Buffer => Buffer.alloc(n);

function fourcc(type: string): Buffer {
  if (type.length !== 4) throw new Error(`box type must be 4 characters: '${type}'`);
  return str(type);
}

/** A box with a 32-bit size: `size u32, type, payload`. */
export function box(type: string, ...payload: Bytes[]): Buffer {
  const body = cat(...payload);
  return cat(u32(8 + body.length), fourcc(type), body);
}

/** A FullBox: `version u8, flags u24` before the payload. */
export function fullBox(type: string, version: number, flags: number, ...payload: Bytes[]): Buffer {
  return box(type, u8(version), u24(flags), ...payload);
}

/** A `uuid` box with the given user type (32 hex digits). */
export function uuidBox(uuid: string, ...payload: Bytes[]): Buffer {
  return box('uuid', Buffer.from(uuid, 'hex'), ...payload);
}

/** A `uuid` box whose payload starts with `version u8, flags u24`, as every Smooth uuid box does. */
export function fullUuidBox(uuid: string, version: number, flags: number, ...payload: Bytes[]): Buffer {
  return uuidBox(uuid, u8(version), u24(flags), ...payload);
}

/** A box with `size == 1` and a 64-bit largesize (uuid user type, if any, after the largesize). */
export function largeBox(type: string, ...payload: Bytes[]): Buffer {
  const body = cat(...payload);
  return cat(u32(1), fourcc(type), u64(16 + body.length), body);
}

/** A box with `size == 0`: it extends to the end of the input. */
export function toEndBox(type: string, ...payload: Bytes[]): Buffer {
  return cat(u32(0), fourcc(type), ...payload);
}

// ---------------------------------------------------------------------------------------------------
// Header boxes
// ---------------------------------------------------------------------------------------------------

/** `ftyp` as ffmpeg's ismv muxer writes it: isml / 1 / piff, iso2. */
export function ftyp(major = 'isml', minor = 1, compatible: string[] = ['piff', 'iso2']): Buffer {
  return box('ftyp', fourcc(major), u32(minor), ...compatible.map(fourcc));
}

const MATRIX = cat(u32(0x00010000), u32(0), u32(0), u32(0), u32(0x00010000), u32(0), u32(0), u32(0), u32(0x40000000));

/** `mvhd` version 0. */
export function mvhd(timescale = 1000, nextTrackId = 2): Buffer {
  return fullBox('mvhd', 0, 0, u32(0), u32(0), u32(timescale), u32(0), u32(0x00010000), u16(0x0100), zeros(10),
    MATRIX, zeros(24), u32(nextTrackId));
}

/** `tkhd` version 0 or 1. */
export function tkhd(trackId: number, o: { version?: 0 | 1; width?: number; height?: number } = {}): Buffer {
  const times = o.version === 1 ? cat(u64(0), u64(0), u32(trackId), u32(0), u64(0)) : cat(u32(0), u32(0), u32(trackId), u32(0), u32(0));
  return fullBox('tkhd', o.version ?? 0, 7, times, zeros(8), u16(0), u16(0), u16(0), u16(0), MATRIX,
    u32((o.width ?? 0) << 16), u32((o.height ?? 0) << 16));
}

/** Packs an ISO 639-2/T code into the 15-bit mdhd language field. */
function packLanguage(lang: string): number {
  return ((lang.charCodeAt(0) - 0x60) << 10) | ((lang.charCodeAt(1) - 0x60) << 5) | (lang.charCodeAt(2) - 0x60);
}

/** `mdhd` version 0 or 1. */
export function mdhd(timescale: number, language = 'und', version: 0 | 1 = 0): Buffer {
  const times = version === 1 ? cat(u64(0), u64(0), u32(timescale), u64(0)) : cat(u32(0), u32(0), u32(timescale), u32(0));
  return fullBox('mdhd', version, 0, times, u16(packLanguage(language)), u16(0));
}

/** `hdlr` with the given handler type (`vide`, `soun`, `text`, `meta`…). */
export function hdlr(handler: string, name = 'Handler'): Buffer {
  return fullBox('hdlr', 0, 0, u32(0), fourcc(handler), zeros(12), str(name), u8(0));
}

/** `avcC` for the given SPS/PPS NAL units (4-byte NAL lengths). */
export function avcC(sps: Bytes[], pps: Bytes[], nalLengthSize = 4): Buffer {
  const first = buf(sps[0] ?? [0x67, 0x42, 0xc0, 0x0c]);
  return box('avcC', u8(1), u8(first[1] ?? 0x42), u8(first[2] ?? 0xc0), u8(first[3] ?? 0x0c),
    u8(0xfc | (nalLengthSize - 1)), u8(0xe0 | sps.length), ...sps.flatMap((s) => [u16(buf(s).length), buf(s)]),
    u8(pps.length), ...pps.flatMap((p) => [u16(buf(p).length), buf(p)]));
}

/** A visual sample entry (`avc1` by default) with the given child boxes (e.g. avcC). */
export function visualEntry(format: string, width: number, height: number, ...children: Bytes[]): Buffer {
  return box(format, zeros(6), u16(1), zeros(16), u16(width), u16(height), u32(0x00480000), u32(0x00480000),
    u32(0), u16(1), zeros(32), u16(0x0018), u16(0xffff), ...children);
}

/** An `esds` carrying a DecoderConfigDescriptor (object type 0x40 = MPEG-4 Audio) and the ASC. */
export function esds(asc: Bytes, o: { objectType?: number; avgBitrate?: number; maxBitrate?: number } = {}): Buffer {
  const dsi = cat(u8(5), u8(buf(asc).length), asc);
  const dcd = cat(u8(4), u8(13 + dsi.length), u8(o.objectType ?? 0x40), u8(0x15), u24(0), u32(o.maxBitrate ?? 0),
    u32(o.avgBitrate ?? 0), dsi);
  const sl = cat(u8(6), u8(1), u8(2));
  const es = cat(u8(3), u8(3 + dcd.length + sl.length), u16(0), u8(0), dcd, sl);
  return fullBox('esds', 0, 0, es);
}

/** An audio sample entry (`mp4a` by default), version 0 layout, with the given child boxes (e.g. esds). */
export function audioEntry(format: string, channels: number, sampleRate: number, ...children: Bytes[]): Buffer {
  return box(format, zeros(6), u16(1), u16(0), u16(0), u32(0), u16(channels), u16(16), u16(0), u16(0),
    u32(sampleRate * 65536), ...children);
}

export function stsd(...entries: Bytes[]): Buffer {
  return fullBox('stsd', 0, 0, u32(entries.length), ...entries);
}

/** A trak with empty sample tables, as a fragmented file has. */
export function trak(o: { trackId: number; handler: string; timescale: number; language?: string; entry?: Bytes; width?: number; height?: number }): Buffer {
  const stbl = box('stbl', stsd(...(o.entry ? [o.entry] : [])), fullBox('stts', 0, 0, u32(0)), fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)), fullBox('stco', 0, 0, u32(0)));
  const minf = box('minf', o.handler === 'soun' ? fullBox('smhd', 0, 0, u32(0)) : fullBox('vmhd', 0, 1, zeros(8)),
    box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1))), stbl);
  return box('trak', tkhd(o.trackId, { width: o.width, height: o.height }),
    box('mdia', mdhd(o.timescale, o.language ?? 'und'), hdlr(o.handler), minf));
}

/** `trex` with per-track defaults. */
export function trex(trackId: number, d: { duration?: number; size?: number; flags?: number; descriptionIndex?: number } = {}): Buffer {
  return fullBox('trex', 0, 0, u32(trackId), u32(d.descriptionIndex ?? 1), u32(d.duration ?? 0), u32(d.size ?? 0), u32(d.flags ?? 0));
}

/** Description of one track for {@link moov} and {@link lsmSmil}. */
export interface TrackSpec {
  trackId: number;
  kind: 'video' | 'audio' | 'text';
  bitrate?: number;
  timescale?: number;
  /** Sample entry box; defaults to an avc1 (video), mp4a (audio) or none (text). */
  entry?: Bytes;
  /** moov handler; defaults from `kind`. */
  handler?: string;
  width?: number;
  height?: number;
  language?: string;
  /** trex defaults. */
  trex?: { duration?: number; size?: number; flags?: number };
  /** Extra LSM params (name → value), e.g. `{ FourCC: 'H264' }`. */
  params?: Record<string, string>;
}

export const SPS = Buffer.from('6742c00cda0a37e4c044000003000400000300c83c50aa80', 'hex');
export const PPS = Buffer.from('68ce3c80', 'hex');
/** AAC-LC, 48 kHz, stereo. */
export const ASC = Buffer.from('1190', 'hex');

/** The default sample entry of a track kind. */
export function defaultEntry(t: TrackSpec): Buffer | undefined {
  if (t.kind === 'video') return visualEntry('avc1', t.width ?? 160, t.height ?? 90, avcC([SPS], [PPS]));
  if (t.kind === 'audio') return audioEntry('mp4a', 2, 48000, esds(ASC, { avgBitrate: t.bitrate ?? 32000 }));
  return undefined;
}

const HANDLER = { video: 'vide', audio: 'soun', text: 'text' } as const;

/** A `moov`: mvhd, one trak per track, and (unless `mvex: false`) mvex with one trex per track. */
export function moov(tracks: TrackSpec[], o: { timescale?: number; extra?: Bytes[]; mvex?: boolean } = {}): Buffer {
  return box('moov', mvhd(o.timescale ?? 1000, tracks.length + 1),
    ...tracks.map((t) => trak({
      trackId: t.trackId,
      handler: t.handler ?? HANDLER[t.kind],
      timescale: t.timescale ?? 10_000_000,
      language: t.language,
      entry: t.entry ?? defaultEntry(t),
      width: t.width,
      height: t.height,
    })),
    ...(o.mvex === false ? [] : [box('mvex', ...tracks.map((t) => trex(t.trackId, t.trex)))]),
    ...(o.extra ?? []));
}

function xmlAttr(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** SMIL text of a Live Server Manifest for the given tracks, shaped like ffmpeg's. */
export function lsmSmil(tracks: TrackSpec[]): string {
  const tag = { video: 'video', audio: 'audio', text: 'textstream' } as const;
  const els = tracks.map((t) => {
    const params: Record<string, string> = { trackID: String(t.trackId), ...t.params };
    const body = Object.entries(params)
      .map(([name, value]) => `<param name="${xmlAttr(name)}" value="${xmlAttr(value)}" valuetype="data"/>\n`)
      .join('');
    return `<${tag[t.kind]} src="Streams" systemBitrate="${t.bitrate ?? 100000}">\n${body}</${tag[t.kind]}>\n`;
  });
  return `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
<head>
<meta name="creator" content="fmp4 test helper" />
</head>
<body>
<switch>
${els.join('')}</switch>
</body>
</smil>
`;
}

/** Text encodings a Live Server Manifest box may carry. */
export type LsmEncoding = 'utf8' | 'utf8bom' | 'utf16le' | 'utf16lebom' | 'utf16be' | 'utf16bebom';

/** Encodes SMIL text as the payload of a Live Server Manifest box. */
export function encodeText(text: string, encoding: LsmEncoding): Buffer {
  const le = Buffer.from(text, 'utf16le');
  switch (encoding) {
    case 'utf8':
      return Buffer.from(text, 'utf8');
    case 'utf8bom':
      return cat([0xef, 0xbb, 0xbf], Buffer.from(text, 'utf8'));
    case 'utf16le':
      return le;
    case 'utf16lebom':
      return cat([0xff, 0xfe], le);
    case 'utf16be':
      return Buffer.from(le).swap16();
    case 'utf16bebom':
      return cat([0xfe, 0xff], Buffer.from(le).swap16());
  }
}

/** Live Server Manifest uuid box: version 0, flags 0, then the SMIL text (or raw bytes). */
export function lsmBox(smil: string | Bytes, encoding: LsmEncoding = 'utf8', trailing: Bytes = []): Buffer {
  const payload = typeof smil === 'string' ? encodeText(smil, encoding) : buf(smil);
  return fullUuidBox(UUID_LSM, 0, 0, payload, trailing);
}

/** The header of an ingest POST: ftyp, Live Server Manifest box, moov. */
export function ingestHeader(tracks: TrackSpec[]): Buffer {
  return cat(ftyp(), lsmBox(lsmSmil(tracks)), moov(tracks));
}

// ---------------------------------------------------------------------------------------------------
// Fragment boxes
// ---------------------------------------------------------------------------------------------------

export function mfhd(sequenceNumber: number): Buffer {
  return fullBox('mfhd', 0, 0, u32(sequenceNumber));
}

/** tfhd fields; each present field sets its flag. `flags` adds further bits (e.g. default-base-is-moof). */
export interface TfhdSpec {
  trackId: number;
  flags?: number;
  baseDataOffset?: bigint | number;
  sampleDescriptionIndex?: number;
  defaultSampleDuration?: number;
  defaultSampleSize?: number;
  defaultSampleFlags?: number;
}

export function tfhd(t: TfhdSpec): Buffer {
  let flags = t.flags ?? 0;
  const fields: Buffer[] = [];
  if (t.baseDataOffset !== undefined) {
    flags |= 0x000001;
    fields.push(u64(t.baseDataOffset));
  }
  if (t.sampleDescriptionIndex !== undefined) {
    flags |= 0x000002;
    fields.push(u32(t.sampleDescriptionIndex));
  }
  if (t.defaultSampleDuration !== undefined) {
    flags |= 0x000008;
    fields.push(u32(t.defaultSampleDuration));
  }
  if (t.defaultSampleSize !== undefined) {
    flags |= 0x000010;
    fields.push(u32(t.defaultSampleSize));
  }
  if (t.defaultSampleFlags !== undefined) {
    flags |= 0x000020;
    fields.push(u32(t.defaultSampleFlags));
  }
  return fullBox('tfhd', 0, flags, u32(t.trackId), ...fields);
}

/** One trun sample; each field present on the first sample sets its trun flag for all samples. */
export interface TrunSampleSpec {
  duration?: number;
  size?: number;
  flags?: number;
  cto?: number;
}

export interface TrunSpec {
  version?: 0 | 1;
  dataOffset?: number;
  firstSampleFlags?: number;
  samples: TrunSampleSpec[];
  /** Overrides the sample count written (to build malformed boxes). */
  count?: number;
}

export function trun(t: TrunSpec): Buffer {
  const first = t.samples[0] ?? {};
  let flags = 0;
  if (t.dataOffset !== undefined) flags |= 0x000001;
  if (t.firstSampleFlags !== undefined) flags |= 0x000004;
  if (first.duration !== undefined) flags |= 0x000100;
  if (first.size !== undefined) flags |= 0x000200;
  if (first.flags !== undefined) flags |= 0x000400;
  if (first.cto !== undefined) flags |= 0x000800;
  const body: Buffer[] = [u32(t.count ?? t.samples.length)];
  if (t.dataOffset !== undefined) body.push(i32(t.dataOffset));
  if (t.firstSampleFlags !== undefined) body.push(u32(t.firstSampleFlags));
  for (const s of t.samples) {
    if (flags & 0x000100) body.push(u32(s.duration ?? 0));
    if (flags & 0x000200) body.push(u32(s.size ?? 0));
    if (flags & 0x000400) body.push(u32(s.flags ?? 0));
    if (flags & 0x000800) body.push(t.version === 1 ? i32(s.cto ?? 0) : u32(s.cto ?? 0));
  }
  return fullBox('trun', t.version ?? 0, flags, ...body);
}

export function tfdt(time: bigint | number, version: 0 | 1 = 1): Buffer {
  return fullBox('tfdt', version, 0, version === 1 ? u64(time) : u32(Number(time)));
}

/** tfxd uuid box. Version 0 writes 32-bit fields, version 1 64-bit. */
export function tfxd(time: bigint | number, duration: bigint | number, version: 0 | 1 = 1): Buffer {
  return version === 1
    ? fullUuidBox(UUID_TFXD, 1, 0, u64(time), u64(duration))
    : fullUuidBox(UUID_TFXD, 0, 0, u32(Number(time)), u32(Number(duration)));
}

/** tfrf uuid box with a one-byte FragmentCount. */
export function tfrf(entries: ReadonlyArray<{ time: bigint | number; duration: bigint | number }>, version: 0 | 1 = 1): Buffer {
  const body = entries.flatMap((e) => (version === 1 ? [u64(e.time), u64(e.duration)] : [u32(Number(e.time)), u32(Number(e.duration))]));
  return fullUuidBox(UUID_TFRF, version, 0, u8(entries.length), ...body);
}

export const traf = (...children: Bytes[]): Buffer => box('traf', ...children);
export const moof = (...children: Bytes[]): Buffer => box('moof', ...children);
export const mdat = (...data: Bytes[]): Buffer => box('mdat', ...data);
/** An empty `mfra`: the end-of-stream signal of a live ingest. */
export const mfra = (...children: Bytes[]): Buffer => box('mfra', ...children);

/** One track's part of a {@link fragment}. */
export interface TrafSpec {
  trackId: number;
  time: bigint | number;
  duration?: bigint | number;
  /** Sample payloads; each sample gets its size and (equal share of) the duration. */
  samples: Bytes[];
  /** Per-sample flags; default SYNC for the first sample, NON_SYNC for the rest. */
  flags?: number[];
  /** Per-sample composition offsets; when given, the trun carries them (version `ctoVersion`). */
  cto?: number[];
  ctoVersion?: 0 | 1;
  /** Write a tfdt with this time. */
  decodeTime?: bigint | number;
  /** Omit the tfxd (to test the tfdt fallback or its absence). */
  noTfxd?: boolean;
  /** Boxes inserted in the traf after the trun (sdtp, other uuids…). */
  extra?: Bytes[];
  /** Adds this to the computed data offset (to point outside the mdat). */
  dataOffsetDelta?: number;
}

/** Layout options of {@link fragment}. */
export interface FragmentOptions {
  /**
   * Set default-base-is-moof in every tfhd, so every trun data_offset counts from the moof start.
   * Without it (ffmpeg's ISM profile), ISO 14496-12 §8.8.7 makes the first traf's base the moof start and
   * each later traf's base the end of the previous traf's data.
   */
  defaultBaseIsMoof?: boolean;
}

/**
 * A `moof` + `mdat` with one traf per spec and the sample data in traf order in one mdat. No
 * base-data-offset; trun data offsets follow {@link FragmentOptions.defaultBaseIsMoof}.
 */
export function fragment(sequenceNumber: number, trafs: TrafSpec[], o: FragmentOptions = {}): Buffer {
  const build = (moofSize: number): Buffer => {
    let offset = moofSize + 8; // where the next traf's data starts, from the moof start
    let base = 0; // the implicit base of the next traf
    const children = trafs.map((t) => {
      const n = t.samples.length;
      const total = BigInt(t.duration ?? 10_000_000);
      const each = n > 0 ? Number(total / BigInt(n)) : 0;
      const samples: TrunSampleSpec[] = t.samples.map((s, i) => ({
        duration: i === n - 1 ? Number(total - BigInt(each) * BigInt(n - 1)) : each,
        size: buf(s).length,
        flags: t.flags?.[i] ?? (i === 0 ? SYNC : NON_SYNC),
        ...(t.cto ? { cto: t.cto[i] ?? 0 } : {}),
      }));
      const dataOffset = offset - (o.defaultBaseIsMoof ? 0 : base) + (t.dataOffsetDelta ?? 0);
      offset += t.samples.reduce((sum, s) => sum + buf(s).length, 0);
      base = offset;
      return traf(
        tfhd({ trackId: t.trackId, flags: o.defaultBaseIsMoof ? 0x020000 : 0 }),
        ...(t.decodeTime !== undefined ? [tfdt(t.decodeTime)] : []),
        trun({ version: t.ctoVersion, dataOffset, samples }),
        ...(t.extra ?? []),
        ...(t.noTfxd ? [] : [tfxd(t.time, total)]),
      );
    });
    return moof(mfhd(sequenceNumber), ...children);
  };
  const size = build(0).length; // every field has a fixed size, so the real offsets do not change it
  return cat(build(size), mdat(...trafs.flatMap((t) => t.samples)));
}

/**
 * A `moof` whose single run of data starts right after it, in an `mdat` holding `data`:
 * `build(dataOffset)` returns the moof children, given the data offset from the moof start.
 */
export function selfOffsetFragment(build: (dataOffset: number) => Bytes[], ...data: Bytes[]): Buffer {
  const size = moof(...build(0)).length;
  return cat(moof(...build(size + 8)), mdat(...data));
}

/** Deterministic sample payload: `n` bytes derived from `seed`. */
export function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
