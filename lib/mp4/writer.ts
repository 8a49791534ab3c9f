/**
 * Writes the fragment a Smooth client receives (MS-SSTR 2.2.4, protocol doc §4.2): one `moof` with
 * `mfhd` and a single `traf`, then an `mdat` with that track's samples only.
 *
 * Profile: `tfhd` without base-data-offset and without default size/duration (Silverlight and WMP
 * mishandle them; every sample field goes into `trun`); `trun.data_offset` points just past the mdat
 * header; passthrough boxes (sdtp, PIFF uuids) come before `tfxd`, and `tfrf` directly follows `tfxd`,
 * so no non-uuid box ever follows tfxd (VLC crashes on that).
 */
import { TFHD, TRUN, UUID_TFRF, UUID_TFXD } from './boxes';
import type { FragmentTime } from '../model';

/** Input of {@link writeFragment}: one track's fragment with resolved samples. */
export interface FragmentSource {
  /** tfhd track_ID, kept as ingested (players key on their own rebuilt moov and patch it as needed). */
  trackId: number;
  sequenceNumber: number;
  sampleDescriptionIndex: number | undefined;
  decodeTime: bigint | undefined;
  samples: ReadonlyArray<{ duration: number; size: number; flags: number; compositionOffset: number }>;
  data: readonly Buffer[];
  dataSize: number;
  extra: readonly Buffer[];
}

/** A written fragment: the whole response and where its parts start. */
export interface WrittenFragment {
  /** `moof` + `mdat`, freshly allocated (not a view into ingest buffers). */
  data: Buffer;
  /** Byte length of the `moof`: `data.subarray(0, moofSize)` is the FragmentInfo response. */
  moofSize: number;
}

const UUID_TFXD_BYTES = Buffer.from(UUID_TFXD, 'hex');
const UUID_TFRF_BYTES = Buffer.from(UUID_TFRF, 'hex');
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
 * Writes a client fragment.
 * @param src - samples and passthrough boxes of the track fragment
 * @param time - the tfxd time (equals the `t` clients request)
 * @param duration - the tfxd duration
 * @param lookahead - tfrf entries (the next fragments), or `undefined` to write no tfrf at all
 */
export function writeFragment(
  src: FragmentSource,
  time: bigint,
  duration: bigint,
  lookahead: readonly FragmentTime[] | undefined,
): WrittenFragment {
  const n = src.samples.length;
  const hasCto = src.samples.some((s) => s.compositionOffset !== 0);
  const negativeCto = src.samples.some((s) => s.compositionOffset < 0);
  const trunFlags = TRUN.DATA_OFFSET | TRUN.SAMPLE_DURATION | TRUN.SAMPLE_SIZE | TRUN.SAMPLE_FLAGS | (hasCto ? TRUN.SAMPLE_CTO : 0);
  const perSample = hasCto ? 16 : 12;
  const tfhdSize = 16 + (src.sampleDescriptionIndex !== undefined ? 4 : 0);
  const tfdtSize = src.decodeTime !== undefined ? 20 : 0;
  const trunSize = 20 + n * perSample;
  const extraSize = src.extra.reduce((sum, b) => sum + b.length, 0);
  const tfxdSize = 44;
  const entries = lookahead?.slice(0, 255);
  const tfrfSize = entries ? 29 + entries.length * 16 : 0;
  const trafSize = 8 + tfhdSize + tfdtSize + trunSize + extraSize + tfxdSize + tfrfSize;
  const moofSize = 8 + 16 + trafSize;
  const out = Buffer.allocUnsafeSlow(moofSize + 8 + src.dataSize);
  // A DataView and TypedArray.set instead of Buffer's write*/copy helpers: this runs once per ingested
  // fragment, and the helpers' per-call checks cost more than the bytes (see the ingest benchmark).
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
  u32(src.sequenceNumber);
  head(trafSize, TRAF);
  head(tfhdSize, TFHD_TYPE);
  full(0, src.sampleDescriptionIndex !== undefined ? TFHD.SAMPLE_DESCRIPTION_INDEX : 0);
  u32(src.trackId);
  if (src.sampleDescriptionIndex !== undefined) u32(src.sampleDescriptionIndex);
  if (src.decodeTime !== undefined) {
    head(tfdtSize, TFDT);
    full(1, 0);
    u64(src.decodeTime);
  }
  head(trunSize, TRUN_TYPE);
  full(negativeCto ? 1 : 0, trunFlags);
  u32(n);
  i32(moofSize + 8);
  for (let i = 0; i < n; i++) {
    const s = src.samples[i]!;
    u32(s.duration);
    u32(s.size);
    u32(s.flags);
    if (hasCto) {
      if (negativeCto) i32(s.compositionOffset);
      else u32(s.compositionOffset);
    }
  }
  for (const b of src.extra) bytes(b);
  head(tfxdSize, UUID);
  bytes(UUID_TFXD_BYTES);
  full(1, 0);
  u64(time);
  u64(duration);
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
  head(8 + src.dataSize, MDAT);
  for (const b of src.data) bytes(b);
  return { data: out, moofSize };
}
