/**
 * The format-neutral media model: what an ingest module produces, a store holds and every output
 * (Smooth fragments today, CMAF segments for DASH and HLS next) packages. Nothing here knows a
 * delivery format: no tfxd, no tfrf, no URL.
 *
 * A fragment's samples are held once, in one allocation laid out as
 * `[sample table (16 bytes per sample)][passthrough boxes][sample bytes]`; the fields of a
 * {@link MediaFragment} are views into it, so a store that holds the fragment holds exactly that
 * allocation, and nothing of the ingest buffers it came from.
 */
import type { FragmentTime, TrackInfo } from './model';

/** One sample with every field resolved (trun, then tfhd, then trex defaults). */
export interface Sample {
  duration: number;
  size: number;
  flags: number;
  /** Signed; 0 when the encoder sent none. */
  compositionOffset: number;
}

/** The description of one track and its init segment, kept as long as the track exists. */
export interface TrackHeader {
  /** Track identity across streams and reconnects ({@link trackKey} of `info`). */
  readonly key: string;
  /** What manifests say about the track. */
  readonly info: TrackInfo;
  /** `track_ID` of the track in the ingest bitstream that first described it (`init` calls it 1). */
  readonly trackId: number;
  /**
   * The track's init segment (CMAF header): `ftyp` + `moov` with this one `trak` and its `mvex/trex`,
   * built from the ingest `moov`; no `udta`, `uuid`, `edts` or Live Server Manifest box. Times in the
   * track timescale.
   */
  readonly init: Buffer;
}

/** Bytes one sample takes in a {@link SampleTable}. */
const SAMPLE_BYTES = 16;

/**
 * The samples of a fragment as four 32-bit words each (duration, size, flags, composition offset), in
 * the machine's byte order: 16 bytes a sample where an object per sample would cost several times that
 * in a store holding hours of fragments.
 */
export class SampleTable {
  /** Number of samples. */
  readonly count: number;
  /** Some sample has a non-zero composition offset (B-frames). */
  readonly hasCompositionOffsets: boolean;
  /** Some composition offset is negative (needs a version-1 `trun`). */
  readonly negativeCompositionOffsets: boolean;
  /** Sum of the sample durations. */
  readonly totalDuration: bigint;
  readonly #words: Uint32Array;

  /** @param words - 4 words per sample; a view that the table keeps (not copied) */
  constructor(words: Uint32Array) {
    if (words.length % 4 !== 0) throw new RangeError('a sample table holds 4 words per sample');
    this.#words = words;
    this.count = words.length / 4;
    let any = false;
    let negative = false;
    let total = 0;
    for (let i = 0; i < this.count; i++) {
      const cto = words[i * 4 + 3]! | 0;
      if (cto !== 0) any = true;
      if (cto < 0) negative = true;
      total += words[i * 4]!;
    }
    this.hasCompositionOffsets = any;
    this.negativeCompositionOffsets = negative;
    // Below 2^53 for any fragment that fits in memory: 2^32 samples of 2^32 ticks would not.
    this.totalDuration = BigInt(total);
  }

  /** A table in its own memory, from sample records. */
  static from(samples: ArrayLike<Sample>): SampleTable {
    const words = new Uint32Array(samples.length * 4);
    writeSamples(words, samples);
    return new SampleTable(words);
  }

  /** Duration of sample `i`, track timescale. */
  duration(i: number): number {
    return this.#words[i * 4]!;
  }

  /** Bytes of sample `i`. */
  size(i: number): number {
    return this.#words[i * 4 + 1]!;
  }

  /** ISO 14496-12 sample flags of sample `i`. */
  flags(i: number): number {
    return this.#words[i * 4 + 2]!;
  }

  /** Composition offset of sample `i` (signed). */
  compositionOffset(i: number): number {
    return this.#words[i * 4 + 3]! | 0;
  }

  /** The table's bytes (a view, machine byte order). */
  get bytes(): Uint8Array {
    return new Uint8Array(this.#words.buffer, this.#words.byteOffset, this.#words.byteLength);
  }

  /** Samples `start` to `end` (exclusive) as a table that views this one's memory. */
  slice(start: number, end = this.count): SampleTable {
    return new SampleTable(this.#words.subarray(start * 4, end * 4));
  }

  /** One record per sample (for tests and tools; the media path reads the table directly). */
  toArray(): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.count; i++) {
      out.push({ duration: this.duration(i), size: this.size(i), flags: this.flags(i), compositionOffset: this.compositionOffset(i) });
    }
    return out;
  }
}

function writeSamples(words: Uint32Array, samples: ArrayLike<Sample>): void {
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    words[i * 4] = s.duration;
    words[i * 4 + 1] = s.size;
    words[i * 4 + 2] = s.flags;
    words[i * 4 + 3] = s.compositionOffset;
  }
}

/** ISO 14496-12 sample flags: `sample_is_non_sync_sample` (bit 16). */
const NON_SYNC = 0x00010000;

/** Everything about a stored fragment except its sample bytes. */
export interface FragmentMeta extends FragmentTime {
  /**
   * Start of the fragment as listed, in the track timescale: the encoder's presentation time (`tfxd`,
   * else `tfdt`), clamped to 0 when it is negative (AAC priming; manifest times are unsigned).
   */
  readonly time: bigint;
  /** Listed duration: the encoder's, less the part before 0 when the start was clamped. */
  readonly duration: bigint;
  /** Presentation time of the first sample as ingested (`tfxd`, or `tfdt` plus its composition offset); may be negative. */
  readonly presentationTime: bigint;
  /** Decode time of the first sample: `tfdt` as ingested, else `tfxd` minus the first composition offset; may be negative. */
  readonly decodeTime: bigint;
  /** The encoder sent a `tfdt` (Smooth responses keep one then, as ingested). */
  readonly decodeTimeSent: boolean;
  /** `track_ID` of the track in the ingest bitstream this fragment came in. */
  readonly trackId: number;
  /** `mfhd.sequence_number` as ingested. */
  readonly sequenceNumber: number;
  /** `tfhd` sample description index, when the encoder set one. */
  readonly sampleDescriptionIndex: number | undefined;
  readonly samples: SampleTable;
  /** The first sample is a sync sample: a stream can start here. */
  readonly sync: boolean;
  /** Other `traf` boxes kept for the outputs that pass them on (`sdtp`, PIFF `uuid`s), as views. */
  readonly extra: readonly Buffer[];
  /** Bytes of sample data. */
  readonly dataSize: number;
  /** When the fragment was stored, ms since the epoch (Last-Modified). */
  readonly storedAt: number;
}

/** A fragment held in memory: its description and its sample bytes, stored once. */
export interface MediaFragment extends FragmentMeta {
  /** The sample bytes, in decode order (a view into the fragment's one allocation). */
  readonly data: Buffer;
  /** Bytes the fragment holds: sample table, passthrough boxes and sample data together. */
  readonly byteLength: number;
}

/** What {@link packFragment} copies into a fragment's own allocation. */
export interface FragmentSource {
  trackId: number;
  sequenceNumber: number;
  sampleDescriptionIndex: number | undefined;
  /** Sample records, or a table (copied word for word). */
  samples: ArrayLike<Sample> | SampleTable;
  extra: readonly Buffer[];
  /** Sample bytes in order, possibly in pieces and views into other buffers. */
  data: readonly Buffer[];
  dataSize: number;
}

/** Times of a fragment as {@link packFragment} records them. */
export interface FragmentTimes {
  time: bigint;
  duration: bigint;
  presentationTime: bigint;
  decodeTime: bigint;
  decodeTimeSent: boolean;
  storedAt: number;
}

/**
 * Copies a fragment's samples, passthrough boxes and sample bytes into one fresh allocation and
 * returns the {@link MediaFragment} whose fields are views into it: the only copy of the media the
 * origin makes.
 */
export function packFragment(src: FragmentSource, times: FragmentTimes): MediaFragment {
  // A table by its shape, not instanceof: it may come from another copy of the package.
  const given = 'length' in src.samples ? undefined : src.samples;
  const n = given ? given.count : (src.samples as ArrayLike<Sample>).length;
  let extraSize = 0;
  for (const b of src.extra) extraSize += b.length;
  const tableSize = n * SAMPLE_BYTES;
  // Not from the shared pool: a pooled slice would keep its 8 KiB neighbours alive as long as the store holds it.
  const buf = Buffer.allocUnsafeSlow(tableSize + extraSize + src.dataSize);
  const words = new Uint32Array(buf.buffer, buf.byteOffset, n * 4);
  if (given) buf.set(given.bytes, 0);
  else writeSamples(words, src.samples as ArrayLike<Sample>);
  let p = tableSize;
  const extra: Buffer[] = [];
  for (const b of src.extra) {
    buf.set(b, p);
    extra.push(buf.subarray(p, p + b.length));
    p += b.length;
  }
  const dataStart = p;
  for (const b of src.data) {
    buf.set(b, p);
    p += b.length;
  }
  if (p - dataStart !== src.dataSize) throw new RangeError('fragment data does not add up to dataSize');
  const table = new SampleTable(words);
  // Fields listed one by one: an object spread here cost several µs per fragment (benchmarked).
  return {
    time: times.time,
    duration: times.duration,
    presentationTime: times.presentationTime,
    decodeTime: times.decodeTime,
    decodeTimeSent: times.decodeTimeSent,
    storedAt: times.storedAt,
    trackId: src.trackId,
    sequenceNumber: src.sequenceNumber,
    sampleDescriptionIndex: src.sampleDescriptionIndex,
    samples: table,
    sync: n > 0 && (table.flags(0) & NON_SYNC) === 0,
    extra,
    dataSize: src.dataSize,
    data: buf.subarray(dataStart),
    byteLength: buf.length,
  };
}

/*
 * Serialised form of a fragment's description, for stores that keep fragments outside the heap. The
 * bytes never outlive the process that wrote them (the sample table is in machine byte order):
 *
 *   0   4    magic 'LSF1'
 *   4   4    header length H = 64 + 4 × k
 *   8   8    time (i64)               16  8  duration (i64)
 *   24  8    presentationTime (i64)   32  8  decodeTime (i64)
 *   40  8    storedAt (f64, ms)       48  4  trackId
 *   52  4    sequenceNumber           56  4  sampleDescriptionIndex
 *   60  1    flags: 1 decodeTimeSent, 2 sync, 4 sampleDescriptionIndex present
 *   61  1    k, the number of passthrough boxes
 *   62  2    reserved
 *   64  4×k  passthrough box lengths
 *   H   16×n sample table, then the passthrough boxes
 *
 * The sample count n follows from the description's length, which the store records with it; the
 * sample data comes after the description in a record and is not part of it.
 */
const MAGIC = 0x4c534631; // 'LSF1'
const FIXED = 64;

/** Length of the serialised description (everything before the sample data) of `f`. */
export function metaLength(f: FragmentMeta): number {
  let extra = 0;
  for (const b of f.extra) extra += b.length;
  return FIXED + 4 * f.extra.length + f.samples.count * SAMPLE_BYTES + extra;
}

/**
 * Serialises a fragment's description: the bytes {@link decodeFragmentMeta} reads back. The sample
 * data follows it in a record; it is not part of the returned buffer.
 */
export function encodeFragmentMeta(f: FragmentMeta): Buffer {
  if (f.extra.length > 255) throw new RangeError('a fragment keeps at most 255 passthrough boxes');
  const out = Buffer.allocUnsafe(metaLength(f));
  out.writeUInt32BE(MAGIC, 0);
  const header = FIXED + 4 * f.extra.length;
  out.writeUInt32BE(header, 4);
  out.writeBigInt64BE(f.time, 8);
  out.writeBigInt64BE(f.duration, 16);
  out.writeBigInt64BE(f.presentationTime, 24);
  out.writeBigInt64BE(f.decodeTime, 32);
  out.writeDoubleBE(f.storedAt, 40);
  out.writeUInt32BE(f.trackId >>> 0, 48);
  out.writeUInt32BE(f.sequenceNumber >>> 0, 52);
  out.writeUInt32BE((f.sampleDescriptionIndex ?? 0) >>> 0, 56);
  out[60] = (f.decodeTimeSent ? 1 : 0) | (f.sync ? 2 : 0) | (f.sampleDescriptionIndex !== undefined ? 4 : 0);
  out[61] = f.extra.length;
  out.writeUInt16BE(0, 62);
  let p = FIXED;
  for (const b of f.extra) {
    out.writeUInt32BE(b.length, p);
    p += 4;
  }
  out.set(f.samples.bytes, p);
  p += f.samples.count * SAMPLE_BYTES;
  for (const b of f.extra) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

/**
 * Reads a description written by {@link encodeFragmentMeta}; the result's views point into `bytes`.
 * @param dataSize - bytes of sample data that follow the description in its record
 * @throws RangeError when the bytes are not such a description
 */
export function decodeFragmentMeta(bytes: Buffer, dataSize: number): FragmentMeta {
  if (bytes.length < FIXED || bytes.readUInt32BE(0) !== MAGIC) throw new RangeError('not a serialised fragment');
  const header = bytes.readUInt32BE(4);
  const k = bytes[61]!;
  if (header !== FIXED + 4 * k || header > bytes.length) throw new RangeError('serialised fragment header is inconsistent');
  let extraTotal = 0;
  const lengths: number[] = [];
  for (let i = 0; i < k; i++) {
    const len = bytes.readUInt32BE(FIXED + 4 * i);
    lengths.push(len);
    extraTotal += len;
  }
  const tableSize = bytes.length - header - extraTotal;
  if (tableSize < 0 || tableSize % SAMPLE_BYTES !== 0) throw new RangeError('serialised fragment sample table is inconsistent');
  // The table must be 4-byte aligned for a Uint32Array view: copy it when it is not.
  let table = bytes.subarray(header, header + tableSize);
  if (table.byteOffset % 4 !== 0) table = Buffer.from(table);
  const words = new Uint32Array(table.buffer, table.byteOffset, tableSize / 4);
  const extra: Buffer[] = [];
  let p = header + tableSize;
  for (const len of lengths) {
    extra.push(bytes.subarray(p, p + len));
    p += len;
  }
  const flags = bytes[60]!;
  return {
    time: bytes.readBigInt64BE(8),
    duration: bytes.readBigInt64BE(16),
    presentationTime: bytes.readBigInt64BE(24),
    decodeTime: bytes.readBigInt64BE(32),
    storedAt: bytes.readDoubleBE(40),
    trackId: bytes.readUInt32BE(48),
    sequenceNumber: bytes.readUInt32BE(52),
    sampleDescriptionIndex: flags & 4 ? bytes.readUInt32BE(56) : undefined,
    decodeTimeSent: (flags & 1) !== 0,
    sync: (flags & 2) !== 0,
    samples: new SampleTable(words),
    extra,
    dataSize,
  };
}
