/**
 * The one box writer: small boxes built by concatenation ({@link makeBox}, {@link makeFullBox},
 * {@link tfxdBox}) and the single-track movie fragment header that every output and the simulated
 * encoder write ({@link writeMoof}), sized in advance and written once into one allocation.
 *
 * Layouts: ISO 14496-12 §8.8 (moof, mfhd, traf, tfhd, tfdt, trun), MS-SSTR 2.2.4.4/2.2.4.5 (tfxd, tfrf).
 */
import type { SampleTable } from '../media';
import type { FragmentTime } from '../model';
import { TFHD, TRUN, UUID_TFRF, UUID_TFXD } from './boxes';

const UUID_TFXD_BYTES = Buffer.from(UUID_TFXD, 'hex');
const UUID_TFRF_BYTES = Buffer.from(UUID_TFRF, 'hex');

/** A box with a 32-bit size: `size u32, type, payload…`. `type` is a four-character code. */
export function makeBox(type: string, ...payload: Uint8Array[]): Buffer {
  const head = Buffer.alloc(8);
  head.write(type, 4, 'latin1');
  const out = Buffer.concat([head, ...payload]);
  out.writeUInt32BE(out.length, 0);
  return out;
}

/** A FullBox: `version u8, flags u24`, then the payload. */
export function makeFullBox(type: string, version: number, flags: number, ...payload: Uint8Array[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version << 24) | flags) >>> 0);
  return makeBox(type, vf, ...payload);
}

/** A tfxd (version 1, 64-bit fields). `time` may be negative (AAC priming): it is written as two's complement. */
export function tfxdBox(time: bigint, duration: bigint): Buffer {
  const body = Buffer.alloc(16 + 4 + 16);
  UUID_TFXD_BYTES.copy(body, 0);
  body.writeUInt32BE(0x01000000, 16);
  body.writeBigUInt64BE(BigInt.asUintN(64, time), 20);
  body.writeBigUInt64BE(BigInt.asUintN(64, duration), 28);
  return makeBox('uuid', body);
}

/** What {@link writeMoof} writes: one `traf` and the header of the `mdat` that follows. */
export interface MoofSpec {
  sequenceNumber: number;
  /** `tfhd.track_ID`. */
  trackId: number;
  /** `tfhd` flags to set besides sample-description-index (e.g. {@link TFHD.DEFAULT_BASE_IS_MOOF}). */
  tfhdFlags?: number;
  sampleDescriptionIndex: number | undefined;
  /** A version-1 `tfdt` right after `tfhd`, when given (written as unsigned 64-bit). */
  decodeTime?: bigint;
  samples: SampleTable;
  /** Complete boxes written after the `trun` (sdtp, PIFF uuids), before any tfxd/tfrf. */
  extra: readonly Buffer[];
  /** A version-1 tfxd after `extra`, when given; a negative time is written as two's complement. */
  tfxd?: FragmentTime;
  /** A version-1 tfrf right after the tfxd, when given (at most 255 entries are written). */
  tfrf?: readonly FragmentTime[];
  /** Bytes of sample data in the `mdat`. */
  dataSize: number;
}

/** A written fragment header: `moof` then the `mdat` box header; the sample bytes follow it on the wire. */
export interface MoofHead {
  /** `moof` + the 8-byte `mdat` header (size = 8 + data size). */
  head: Buffer;
  /** Byte length of the `moof` alone (the FragmentInfo response). */
  moofSize: number;
}

/** Box types as big-endian 32-bit values. */
const fourcc = (type: string): number => Buffer.from(type, 'latin1').readUInt32BE(0);
const MOOF = fourcc('moof');
const MFHD = fourcc('mfhd');
const TRAF = fourcc('traf');
const TFHD_TYPE = fourcc('tfhd');
const TFDT = fourcc('tfdt');
const TRUN_TYPE = fourcc('trun');
const UUID = fourcc('uuid');
const MDAT = fourcc('mdat');

/**
 * Writes a single-track movie fragment header. Profile: `tfhd` without base-data-offset and without
 * default size or duration (Silverlight and WMP mishandle them); every sample field in one `trun`
 * (version 1 only when a composition offset is negative), whose `data_offset` points just past the
 * `mdat` header, so the moof is the base either way.
 */
export function writeMoof(spec: MoofSpec): MoofHead {
  const samples = spec.samples;
  const n = samples.count;
  const hasCto = samples.hasCompositionOffsets;
  const negativeCto = samples.negativeCompositionOffsets;
  const trunFlags = TRUN.DATA_OFFSET | TRUN.SAMPLE_DURATION | TRUN.SAMPLE_SIZE | TRUN.SAMPLE_FLAGS | (hasCto ? TRUN.SAMPLE_CTO : 0);
  const perSample = hasCto ? 16 : 12;
  const tfhdFlags = (spec.tfhdFlags ?? 0) | (spec.sampleDescriptionIndex !== undefined ? TFHD.SAMPLE_DESCRIPTION_INDEX : 0);
  if (tfhdFlags & ~(TFHD.SAMPLE_DESCRIPTION_INDEX | TFHD.DEFAULT_BASE_IS_MOOF | TFHD.DURATION_IS_EMPTY)) {
    throw new RangeError('writeMoof writes no tfhd default fields or base-data-offset');
  }
  const tfhdSize = 16 + (spec.sampleDescriptionIndex !== undefined ? 4 : 0);
  const tfdtSize = spec.decodeTime !== undefined ? 20 : 0;
  const trunSize = 20 + n * perSample;
  let extraSize = 0;
  for (const b of spec.extra) extraSize += b.length;
  const tfxdSize = spec.tfxd ? 44 : 0;
  const entries = spec.tfrf && spec.tfrf.length > 255 ? spec.tfrf.slice(0, 255) : spec.tfrf;
  const tfrfSize = entries ? 29 + entries.length * 16 : 0;
  const trafSize = 8 + tfhdSize + tfdtSize + trunSize + extraSize + tfxdSize + tfrfSize;
  const moofSize = 8 + 16 + trafSize;
  const out = Buffer.allocUnsafeSlow(moofSize + 8);
  // A DataView and TypedArray.set instead of Buffer's write*/copy helpers: their per-call checks cost
  // more than the bytes (see the ingest benchmark).
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  let p = 0;
  const u32 = (v: number): void => {
    view.setUint32(p, v >>> 0);
    p += 4;
  };
  const i32 = (v: number): void => {
    view.setInt32(p, v);
    p += 4;
  };
  const u64 = (v: bigint): void => {
    view.setBigUint64(p, BigInt.asUintN(64, v));
    p += 8;
  };
  const head = (size: number, type: number): void => {
    u32(size);
    u32(type);
  };
  const full = (version: number, flags: number): void => u32(((version << 24) | flags) >>> 0);
  const bytes = (b: Uint8Array): void => {
    out.set(b, p);
    p += b.length;
  };

  head(moofSize, MOOF);
  head(16, MFHD);
  full(0, 0);
  u32(spec.sequenceNumber);
  head(trafSize, TRAF);
  head(tfhdSize, TFHD_TYPE);
  full(0, tfhdFlags);
  u32(spec.trackId);
  if (spec.sampleDescriptionIndex !== undefined) u32(spec.sampleDescriptionIndex);
  if (spec.decodeTime !== undefined) {
    head(tfdtSize, TFDT);
    full(1, 0);
    u64(spec.decodeTime);
  }
  head(trunSize, TRUN_TYPE);
  full(negativeCto ? 1 : 0, trunFlags);
  u32(n);
  i32(moofSize + 8);
  for (let i = 0; i < n; i++) {
    u32(samples.duration(i));
    u32(samples.size(i));
    u32(samples.flags(i));
    if (hasCto) {
      if (negativeCto) i32(samples.compositionOffset(i));
      else u32(samples.compositionOffset(i));
    }
  }
  for (const b of spec.extra) bytes(b);
  if (spec.tfxd) {
    head(tfxdSize, UUID);
    bytes(UUID_TFXD_BYTES);
    full(1, 0);
    u64(spec.tfxd.time);
    u64(spec.tfxd.duration);
  }
  if (entries) {
    head(tfrfSize, UUID);
    bytes(UUID_TFRF_BYTES);
    full(1, 0);
    out[p++] = entries.length;
    for (const e of entries) {
      u64(e.time);
      u64(e.duration);
    }
  }
  head(8 + spec.dataSize, MDAT);
  return { head: out, moofSize };
}
