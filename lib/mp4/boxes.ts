/**
 * Pure payload parsers for the boxes a Smooth Streaming origin needs. Each takes a complete {@link Box}
 * and returns a plain record. 64-bit fields are read as `bigint`.
 *
 * Layouts: ISO 14496-12 (tfhd, trun, tfdt, mfhd, trex, tkhd, mdhd, hdlr, stsd), ISO 14496-15 (avcC),
 * ISO 14496-1 (esds), MS-SSTR 2.2.4.4/2.2.4.5 (tfxd, tfrf), MS-SSTR 2.2.7.3 (Live Server Manifest box).
 */
import { SmoothError } from '../errors';
import { Box, childrenOf, findChild, printable } from './reader';

/** uuid of the Live Server Manifest box (A5D40B30-E814-11DD-BA2F-0800200C9A66). */
export const UUID_LIVE_SERVER_MANIFEST = 'a5d40b30e81411ddba2f0800200c9a66';
/** uuid of the deprecated StreamManifestBox (3C2FE51B-EFEE-40A3-AE81-5300199DC348). */
export const UUID_STREAM_MANIFEST = '3c2fe51befee40a3ae815300199dc348';
/** uuid of the TrackFragmentExtendedHeaderBox, tfxd (6D1D9B05-42D5-44E6-80E2-141DAFF757B2). */
export const UUID_TFXD = '6d1d9b0542d544e680e2141daff757b2';
/** uuid of the TfrfBox, lookahead (D4807EF2-CA39-4695-8E54-26CB9E46A79F). */
export const UUID_TFRF = 'd4807ef2ca3946958e5426cb9e46a79f';

/** Bounds-checked cursor over a box payload; every read past the end is an `ERR_BAD_BOX`. */
class Cursor {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }
  need(n: number): void {
    if (this.pos + n > this.end) {
      throw new SmoothError('ERR_BAD_BOX', `'${printable(this.what)}' box is truncated`);
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
}

function cursor(box: Box): Cursor {
  return new Cursor(box.data, box.headerSize, box.data.length, box.type === 'uuid' ? 'uuid' : box.type);
}

/** Reads `version u8, flags u24` of a FullBox. */
function fullBox(c: Cursor): { version: number; flags: number } {
  const version = c.u8();
  const flags = c.u24();
  return { version, flags };
}

/** tfhd flags (ISO 14496-12 §8.8.7). */
export const TFHD = {
  BASE_DATA_OFFSET: 0x000001,
  SAMPLE_DESCRIPTION_INDEX: 0x000002,
  DEFAULT_SAMPLE_DURATION: 0x000008,
  DEFAULT_SAMPLE_SIZE: 0x000010,
  DEFAULT_SAMPLE_FLAGS: 0x000020,
  DURATION_IS_EMPTY: 0x010000,
  DEFAULT_BASE_IS_MOOF: 0x020000,
} as const;

/** trun flags (ISO 14496-12 §8.8.8). */
export const TRUN = {
  DATA_OFFSET: 0x000001,
  FIRST_SAMPLE_FLAGS: 0x000004,
  SAMPLE_DURATION: 0x000100,
  SAMPLE_SIZE: 0x000200,
  SAMPLE_FLAGS: 0x000400,
  SAMPLE_CTO: 0x000800,
} as const;

/** Parsed `tfhd`. Optional fields are `undefined` when their flag is clear. */
export interface Tfhd {
  flags: number;
  trackId: number;
  baseDataOffset: bigint | undefined;
  sampleDescriptionIndex: number | undefined;
  defaultSampleDuration: number | undefined;
  defaultSampleSize: number | undefined;
  defaultSampleFlags: number | undefined;
}

/** Parses a `tfhd` box. */
export function parseTfhd(box: Box): Tfhd {
  const c = cursor(box);
  const { flags } = fullBox(c);
  const trackId = c.u32();
  return {
    flags,
    trackId,
    baseDataOffset: flags & TFHD.BASE_DATA_OFFSET ? c.u64() : undefined,
    sampleDescriptionIndex: flags & TFHD.SAMPLE_DESCRIPTION_INDEX ? c.u32() : undefined,
    defaultSampleDuration: flags & TFHD.DEFAULT_SAMPLE_DURATION ? c.u32() : undefined,
    defaultSampleSize: flags & TFHD.DEFAULT_SAMPLE_SIZE ? c.u32() : undefined,
    defaultSampleFlags: flags & TFHD.DEFAULT_SAMPLE_FLAGS ? c.u32() : undefined,
  };
}

/** One `trun` sample; fields absent from the box are `undefined` (defaults come from tfhd/trex). */
export interface TrunSample {
  duration: number | undefined;
  size: number | undefined;
  flags: number | undefined;
  compositionOffset: number;
}

/** Parsed `trun`. */
export interface Trun {
  version: number;
  flags: number;
  dataOffset: number | undefined;
  firstSampleFlags: number | undefined;
  samples: TrunSample[];
}

/**
 * The fixed part of a `trun`: everything but the per-sample records, which start at `fieldsAt` in the
 * box's `data`, `perSample` bytes each (duration, size, flags, composition offset, in that order, each
 * present when its flag is set). The sample count is checked against the box size: a record-less run
 * (`perSample` 0) is bounded by what its samples' sizes must cover, which only the caller knows.
 */
export interface TrunHeader {
  version: number;
  flags: number;
  count: number;
  dataOffset: number | undefined;
  firstSampleFlags: number | undefined;
  /** Offset of the first per-sample record in the box's `data`. */
  fieldsAt: number;
  /** Bytes of one per-sample record (0 to 16). */
  perSample: number;
}

/** Reads the fixed part of a `trun` without touching its per-sample records. */
export function parseTrunHeader(box: Box): TrunHeader {
  const c = cursor(box);
  const { version, flags } = fullBox(c);
  const count = c.u32();
  const dataOffset = flags & TRUN.DATA_OFFSET ? c.i32() : undefined;
  const firstSampleFlags = flags & TRUN.FIRST_SAMPLE_FLAGS ? c.u32() : undefined;
  const perSample =
    (flags & TRUN.SAMPLE_DURATION ? 4 : 0) +
    (flags & TRUN.SAMPLE_SIZE ? 4 : 0) +
    (flags & TRUN.SAMPLE_FLAGS ? 4 : 0) +
    (flags & TRUN.SAMPLE_CTO ? 4 : 0);
  if (perSample * count > c.end - c.pos) {
    throw new SmoothError('ERR_BAD_BOX', `'trun' declares ${count} samples, more than the box holds`);
  }
  return { version, flags, count, dataOffset, firstSampleFlags, fieldsAt: c.pos, perSample };
}

/**
 * Parses a `trun` box into one record per sample. Sample count is checked against the box size before
 * anything is allocated; a run without per-sample fields may not declare more samples than the box has
 * bytes. Ingest does not use this (see `ingest/fragment.ts`, which reads the records into a compact table).
 */
export function parseTrun(box: Box): Trun {
  const h = parseTrunHeader(box);
  const { version, flags, count } = h;
  if (h.perSample === 0 && count > box.data.length) {
    throw new SmoothError('ERR_BAD_BOX', `'trun' declares ${count} samples, more than the box holds`);
  }
  const c = new Cursor(box.data, h.fieldsAt, box.data.length, 'trun');
  const samples: TrunSample[] = new Array<TrunSample>(count);
  for (let i = 0; i < count; i++) {
    samples[i] = {
      duration: flags & TRUN.SAMPLE_DURATION ? c.u32() : undefined,
      size: flags & TRUN.SAMPLE_SIZE ? c.u32() : undefined,
      flags: flags & TRUN.SAMPLE_FLAGS ? c.u32() : undefined,
      compositionOffset: flags & TRUN.SAMPLE_CTO ? (version === 0 ? c.u32() : c.i32()) : 0,
    };
  }
  return { version, flags, dataOffset: h.dataOffset, firstSampleFlags: h.firstSampleFlags, samples };
}

/** Parses a `tfdt` box: the base media decode time. */
export function parseTfdt(box: Box): bigint {
  const c = cursor(box);
  const { version } = fullBox(c);
  return version === 1 ? c.u64() : BigInt(c.u32());
}

/** Parses an `mfhd` box: the sequence number. */
export function parseMfhd(box: Box): number {
  const c = cursor(box);
  fullBox(c);
  return c.u32();
}

/** Parsed tfxd: absolute start time and duration of a fragment, in the track timescale. */
export interface Tfxd {
  version: number;
  time: bigint;
  duration: bigint;
}

/**
 * Parses a tfxd uuid box. Version 1 times are read as *signed* 64-bit: ffmpeg writes AAC priming as a
 * negative start (e.g. −213333), and no real timestamp reaches 2^63 (29 000 years at 10 MHz). Versions
 * above 1 (Azure's unpublished "version 2") are read with the v1 layout, as the protocol notes advise.
 */
export function parseTfxd(box: Box): Tfxd {
  const c = cursor(box);
  const { version } = fullBox(c);
  if (version === 0) return { version, time: BigInt(c.u32()), duration: BigInt(c.u32()) };
  return { version, time: c.i64(), duration: c.u64() };
}

/** One tfrf entry: a following fragment's start and duration. */
export interface TfrfEntry {
  time: bigint;
  duration: bigint;
}

/** Parses a tfrf uuid box. FragmentCount is one byte, as every implementation writes it. */
export function parseTfrf(box: Box): TfrfEntry[] {
  const c = cursor(box);
  const { version } = fullBox(c);
  const count = c.u8();
  const out: TfrfEntry[] = [];
  for (let i = 0; i < count; i++) {
    out.push(version === 1 ? { time: c.u64(), duration: c.u64() } : { time: BigInt(c.u32()), duration: BigInt(c.u32()) });
  }
  return out;
}

/** Per-track defaults from `mvex/trex`. */
export interface Trex {
  trackId: number;
  defaultSampleDescriptionIndex: number;
  defaultSampleDuration: number;
  defaultSampleSize: number;
  defaultSampleFlags: number;
}

function parseTrex(box: Box): Trex {
  const c = cursor(box);
  fullBox(c);
  return {
    trackId: c.u32(),
    defaultSampleDescriptionIndex: c.u32(),
    defaultSampleDuration: c.u32(),
    defaultSampleSize: c.u32(),
    defaultSampleFlags: c.u32(),
  };
}

/** Sample entry details from `stsd` that describe a codec. */
export interface SampleEntry {
  /** Sample entry type, e.g. `avc1`, `mp4a`, `encv`. */
  format: string;
  width?: number;
  height?: number;
  channels?: number;
  sampleRate?: number;
  sampleSize?: number;
  /** avcC: the SPS and PPS NAL units and the NAL length size. */
  avc?: { sps: Buffer[]; pps: Buffer[]; nalLengthSize: number; profileIndication: number };
  /** esds: the AudioSpecificConfig and MPEG-4 object type. */
  audioSpecificConfig?: Buffer;
  objectTypeIndication?: number;
  /** Average/max bitrate from esds or btrt, when given. */
  avgBitrate?: number;
}

/** One track of a `moov`. */
export interface MoovTrack {
  trackId: number;
  /** Handler type: `vide`, `soun`, `text`, `sbtl`, `meta`, … */
  handler: string;
  timescale: number;
  /** ISO 639-2/T language code from mdhd, e.g. `und`. */
  language: string;
  entry: SampleEntry | undefined;
  trex: Trex | undefined;
}

/** Parsed `moov`: its tracks, and the raw box for archiving. */
export interface Moov {
  timescale: number;
  tracks: MoovTrack[];
}

/** True when an `ftyp` or `styp` box lists `brand`, as its major brand or a compatible one. */
export function hasBrand(box: Box, brand: string): boolean {
  const at = box.headerSize;
  if (box.data.toString('latin1', at, at + 4) === brand) return true;
  for (let i = at + 8; i + 4 <= box.data.length; i += 4) if (box.data.toString('latin1', i, i + 4) === brand) return true;
  return false;
}

/** Parses a `moov` box down to what a Smooth manifest needs. */
export function parseMoov(moov: Box): Moov {
  let timescale = 0;
  const tracks: MoovTrack[] = [];
  const trexes = new Map<number, Trex>();
  for (const child of childrenOf(moov)) {
    if (child.type === 'mvhd') {
      const c = cursor(child);
      const { version } = fullBox(c);
      c.skip(version === 1 ? 16 : 8);
      timescale = c.u32();
    } else if (child.type === 'trak') {
      tracks.push(parseTrak(child));
    } else if (child.type === 'mvex') {
      for (const t of childrenOf(child)) {
        if (t.type !== 'trex') continue;
        const trex = parseTrex(t);
        trexes.set(trex.trackId, trex);
      }
    }
  }
  for (const t of tracks) t.trex = trexes.get(t.trackId);
  return { timescale, tracks };
}

function parseTrak(trak: Box): MoovTrack {
  const tkhd = findChild(trak, 'tkhd');
  const mdia = findChild(trak, 'mdia');
  if (!tkhd || !mdia) throw new SmoothError('ERR_BAD_BOX', "'trak' lacks tkhd or mdia");
  const c = cursor(tkhd);
  const { version } = fullBox(c);
  c.skip(version === 1 ? 16 : 8);
  const trackId = c.u32();
  const mdhd = findChild(mdia, 'mdhd');
  const hdlr = findChild(mdia, 'hdlr');
  if (!mdhd || !hdlr) throw new SmoothError('ERR_BAD_BOX', "'mdia' lacks mdhd or hdlr");
  const m = cursor(mdhd);
  const mv = fullBox(m).version;
  m.skip(mv === 1 ? 16 : 8);
  const timescale = m.u32();
  m.skip(mv === 1 ? 8 : 4);
  const lang = m.u16();
  const language = String.fromCharCode(((lang >> 10) & 31) + 0x60, ((lang >> 5) & 31) + 0x60, (lang & 31) + 0x60);
  const h = cursor(hdlr);
  fullBox(h);
  h.skip(4);
  const handler = h.bytes(4).toString('latin1');
  const stsd = findPath(mdia, ['minf', 'stbl', 'stsd']);
  let entry: SampleEntry | undefined;
  if (stsd) {
    const first = childrenOf(stsd, 8).next();
    if (!first.done) entry = parseSampleEntry(first.value);
  }
  return { trackId, handler, timescale, language, entry, trex: undefined };
}

function findPath(box: Box, path: string[]): Box | undefined {
  let cur: Box | undefined = box;
  for (const type of path) {
    if (!cur) return undefined;
    cur = findChild(cur, type);
  }
  return cur;
}

// Payload bytes before the child boxes: SampleEntry (8) + Visual (70) / Audio v0 (20) fields.
const VISUAL_ENTRY_FIELDS = 78;
const AUDIO_ENTRY_FIELDS = 28;

function parseSampleEntry(box: Box): SampleEntry {
  const format = box.type;
  const c = cursor(box);
  c.skip(6);
  c.u16(); // data_reference_index
  const entry: SampleEntry = { format };
  const isVisual = ['avc1', 'avc3', 'encv', 'hvc1', 'hev1', 'vc-1', 'mp4v'].includes(format);
  const isAudio = ['mp4a', 'enca', 'ac-3', 'ec-3', 'owma', 'wma '].includes(format);
  if (isVisual) {
    c.skip(16);
    entry.width = c.u16();
    entry.height = c.u16();
    for (const child of childrenOf(box, VISUAL_ENTRY_FIELDS)) {
      if (child.type === 'avcC') entry.avc = parseAvcC(child);
      else if (child.type === 'btrt') {
        const b = cursor(child);
        b.skip(8);
        entry.avgBitrate = b.u32();
      }
    }
  } else if (isAudio) {
    const version = c.u16();
    c.skip(6);
    entry.channels = c.u16();
    entry.sampleSize = c.u16();
    c.skip(4);
    entry.sampleRate = c.u32() >>> 16;
    const extra = version === 1 ? 16 : version === 2 ? 36 : 0;
    for (const child of childrenOf(box, AUDIO_ENTRY_FIELDS + extra)) {
      if (child.type === 'esds') Object.assign(entry, parseEsds(child));
    }
  }
  return entry;
}

/** Parses an `avcC` (AVCDecoderConfigurationRecord). */
export function parseAvcC(box: Box): NonNullable<SampleEntry['avc']> {
  const c = cursor(box);
  c.u8(); // configurationVersion
  const profileIndication = c.u8();
  c.skip(2);
  const nalLengthSize = (c.u8() & 3) + 1;
  const sps: Buffer[] = [];
  const pps: Buffer[] = [];
  const nSps = c.u8() & 31;
  for (let i = 0; i < nSps; i++) sps.push(c.bytes(c.u16()));
  const nPps = c.u8();
  for (let i = 0; i < nPps; i++) pps.push(c.bytes(c.u16()));
  return { sps, pps, nalLengthSize, profileIndication };
}

/** Parses an `esds` box down to the decoder config (object type, bitrate, AudioSpecificConfig). */
export function parseEsds(box: Box): Pick<SampleEntry, 'audioSpecificConfig' | 'objectTypeIndication' | 'avgBitrate'> {
  const c = cursor(box);
  fullBox(c);
  const out: Pick<SampleEntry, 'audioSpecificConfig' | 'objectTypeIndication' | 'avgBitrate'> = {};
  // Descriptors: tag u8, size in 1-4 bytes of 7 bits each.
  const descriptor = (): { tag: number; end: number } => {
    const tag = c.u8();
    let size = 0;
    for (let i = 0; i < 4; i++) {
      const b = c.u8();
      size = (size << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    const end = c.pos + size;
    if (end > c.end) throw new SmoothError('ERR_BAD_BOX', "'esds' descriptor overruns the box");
    return { tag, end };
  };
  const es = descriptor();
  if (es.tag !== 3) return out;
  c.skip(2);
  const esFlags = c.u8();
  if (esFlags & 0x80) c.skip(2);
  if (esFlags & 0x40) c.skip(c.u8());
  if (esFlags & 0x20) c.skip(2);
  while (c.pos < es.end) {
    const d = descriptor();
    if (d.tag === 4) {
      out.objectTypeIndication = c.u8();
      c.skip(8); // streamType, bufferSizeDB, maxBitrate
      out.avgBitrate = c.u32();
      while (c.pos < d.end) {
        const ds = descriptor();
        if (ds.tag === 5) out.audioSpecificConfig = Buffer.from(c.bytes(ds.end - c.pos));
        c.pos = ds.end;
      }
    }
    c.pos = d.end;
  }
  return out;
}

/**
 * Returns the XML text of a Live Server Manifest box. The spec's examples declare UTF-16 and ffmpeg
 * writes UTF-8: a BOM decides, else a zero second byte means UTF-16LE (and a zero first byte UTF-16BE).
 * Trailing NULs are dropped (by a backward scan: a `/\0+$/` replace is quadratic in a run of NULs that
 * is not at the end).
 */
export function liveServerManifestText(box: Box): string {
  const c = cursor(box);
  fullBox(c);
  const raw = c.buf.subarray(c.pos, c.end);
  let text: string;
  if (raw[0] === 0xff && raw[1] === 0xfe) text = raw.subarray(2).toString('utf16le');
  else if (raw[0] === 0xfe && raw[1] === 0xff) text = swap16(raw.subarray(2)).toString('utf16le');
  else if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) text = raw.subarray(3).toString('utf8');
  else if (raw.length > 1 && raw[1] === 0 && raw[0] !== 0) text = raw.toString('utf16le');
  else if (raw.length > 1 && raw[0] === 0 && raw[1] !== 0) text = swap16(raw).toString('utf16le');
  else text = raw.toString('utf8');
  return trimTrailingNuls(text);
}

/** `text` without its trailing NUL characters, in time linear in the length of the run. */
function trimTrailingNuls(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0) end--;
  return end === text.length ? text : text.slice(0, end);
}

function swap16(b: Buffer): Buffer {
  const copy = Buffer.from(b.subarray(0, b.length & ~1));
  return copy.swap16();
}
