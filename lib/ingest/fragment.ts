/**
 * Splits an ingested `moof` + `mdat` into one fragment per track fragment (`traf`), with every sample
 * field resolved (trun → tfhd → trex defaults) and the sample bytes located in the `mdat`.
 */
import { SmoothError } from '../errors';
import {
  TFHD,
  TRUN,
  Trex,
  TrunHeader,
  UUID_TFRF,
  UUID_TFXD,
  parseMfhd,
  parseTfdt,
  parseTfhd,
  parseTfxd,
  parseTrunHeader,
} from '../mp4/boxes';
import { MediaFragment, SampleTable, packFragment } from '../media';
import type { FragmentTime } from '../model';
import { Box, childrenOf, printable } from '../mp4/reader';

export type { Sample } from '../media';


/** One track's part of an ingested movie fragment, ready to be rewritten for clients. */
export interface ParsedFragment {
  /** `track_ID` inside the ingest bitstream. */
  trackId: number;
  sequenceNumber: number;
  /** Start time from tfxd (tfdt as a fallback), track timescale; may be negative (AAC priming). */
  time: bigint;
  /** Presentation time of the first sample: the tfxd time, else the tfdt plus its composition offset. */
  presentationTime: bigint;
  duration: bigint;
  /** tfhd sample description index, when the encoder set one. */
  sampleDescriptionIndex: number | undefined;
  /** Ingested tfdt, kept when the encoder sent one. */
  decodeTime: bigint | undefined;
  /**
   * The samples, every field resolved (trun, then tfhd, then trex defaults), in the compact table a
   * stored fragment keeps. Each has at least one byte of data, and there are at most
   * {@link MAX_FRAGMENT_SAMPLES}.
   */
  samples: SampleTable;
  /** Sample bytes, in order: views into the ingested mdat (disjoint ranges of it). */
  data: Buffer[];
  /** Total bytes in `data`. */
  dataSize: number;
  /** Other boxes of the traf to pass through (sdtp, PIFF encryption uuids), as views. */
  extra: Buffer[];
}

/**
 * Most samples one track fragment may list. Real fragments carry a few hundred at most (2 s of 120 fps
 * video: 240; of 48 kHz AAC: 94); the bound keeps the sample table (16 bytes a sample) and the `trun`
 * written for clients (12 to 16 bytes a sample) within 1 MiB whatever a fragment declares.
 */
export const MAX_FRAGMENT_SAMPLES = 65_536;

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_FRAGMENT', message);
}

/**
 * Parses a movie fragment.
 * @param moof - the `moof` box
 * @param mdat - the `mdat` box that follows it
 * @param mdatOffset - distance in bytes from the start of the moof to the start of the mdat
 * @param trexOf - trex defaults of a track id, or `undefined` when the track is not in the header
 */
export function parseMovieFragment(
  moof: Box,
  mdat: Box,
  mdatOffset: number,
  trexOf: (trackId: number) => Trex | undefined | false,
): ParsedFragment[] {
  let sequenceNumber = 0;
  const out: ParsedFragment[] = [];
  // ISO 14496-12 §8.8.7: without base-data-offset or default-base-is-moof, the first traf's data starts
  // at the moof and each later traf's where the previous one's ended.
  let previousEnd = 0;
  const ranges: Array<[number, number]> = [];
  for (const child of childrenOf(moof)) {
    if (child.type === 'mfhd') sequenceNumber = parseMfhd(child);
    if (child.type !== 'traf') continue;
    const fragment = parseTraf(child, mdat, mdatOffset, trexOf, previousEnd, ranges);
    previousEnd = fragment.end;
    fragment.value.sequenceNumber = sequenceNumber;
    out.push(fragment.value);
  }
  if (out.length === 0) throw bad('moof carries no traf');
  // Each mdat byte belongs to one sample at most: runs that share bytes would store and serve them
  // several times (a 20-byte trun repeating a whole mdat).
  if (ranges.length > 1) {
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i]![0] < ranges[i - 1]![1]) {
        throw bad(`trun data [${ranges[i]![0]}, ${ranges[i]![1]}) overlaps another run's [${ranges[i - 1]![0]}, ${ranges[i - 1]![1]})`);
      }
    }
  }
  return out;
}

function parseTraf(
  traf: Box,
  mdat: Box,
  mdatOffset: number,
  trexOf: (trackId: number) => Trex | undefined | false,
  previousEnd: number,
  ranges: Array<[number, number]>,
): { value: ParsedFragment; end: number } {
  let tfhdBox: Box | undefined;
  const truns: Box[] = [];
  const extra: Buffer[] = [];
  let tfxd: { time: bigint; duration: bigint } | undefined;
  let decodeTime: bigint | undefined;
  for (const c of childrenOf(traf)) {
    if (c.type === 'tfhd') tfhdBox = c;
    else if (c.type === 'trun') truns.push(c);
    else if (c.type === 'tfdt') decodeTime = parseTfdt(c);
    else if (c.type === 'uuid' && c.uuid === UUID_TFXD) tfxd = parseTfxd(c);
    else if (c.type === 'uuid' && c.uuid === UUID_TFRF) continue; // rebuilt for clients
    else if (c.type === 'sdtp' || c.type === 'uuid' || c.type === 'sbgp' || c.type === 'sgpd') extra.push(c.data);
    else if (c.type !== 'free' && c.type !== 'skip') {
      // saio/saiz/senc hold offsets into the original layout; passing them through would corrupt them.
      throw bad(`traf box '${printable(c.type)}' is not supported`);
    }
  }
  if (!tfhdBox) throw bad('traf without tfhd');
  const tfhd = parseTfhd(tfhdBox);
  const id = tfhd.trackId;
  const trex = trexOf(id);
  if (trex === false) throw bad(`traf for track_ID ${id}, which the stream header does not describe`);
  if (tfhd.flags & TFHD.BASE_DATA_OFFSET) {
    throw bad('tfhd base-data-offset is not allowed in live ingest (PIFF forbids it)');
  }
  const base = tfhd.flags & TFHD.DEFAULT_BASE_IS_MOOF ? 0 : previousEnd;
  const payloadStart = mdatOffset + mdat.headerSize;
  const payloadEnd = mdatOffset + mdat.data.length;
  // Every sample has at least one byte in the mdat, so the mdat bounds the sample count: checked for
  // the whole traf before anything is allocated per sample (a trun without per-sample fields costs
  // 20 bytes whatever count it declares).
  const headers: TrunHeader[] = truns.map(parseTrunHeader);
  let count = 0;
  for (const h of headers) count += h.count;
  if (count > payloadEnd - payloadStart) {
    throw bad(`track ${id}: the fragment declares ${count} samples but its mdat holds ${payloadEnd - payloadStart} bytes`);
  }
  if (count > MAX_FRAGMENT_SAMPLES) {
    throw bad(`track ${id}: the fragment declares ${count} samples, more than the ${MAX_FRAGMENT_SAMPLES} allowed`);
  }
  const defaultDuration = tfhd.defaultSampleDuration ?? trex?.defaultSampleDuration;
  const defaultSize = tfhd.defaultSampleSize ?? trex?.defaultSampleSize;
  const defaultFlags = tfhd.defaultSampleFlags ?? trex?.defaultSampleFlags;
  // The resolved samples go straight into the compact table a stored fragment keeps (16 bytes each):
  // no record per sample.
  const words = new Uint32Array(count * 4);
  const data: Buffer[] = [];
  let dataSize = 0;
  let pos = base;
  let k = 0;
  for (let r = 0; r < headers.length; r++) {
    const h = headers[r]!;
    const n = h.count;
    if (h.dataOffset !== undefined) pos = base + h.dataOffset;
    const runStart = pos;
    const hasDuration = (h.flags & TRUN.SAMPLE_DURATION) !== 0;
    const hasSize = (h.flags & TRUN.SAMPLE_SIZE) !== 0;
    const hasFlags = (h.flags & TRUN.SAMPLE_FLAGS) !== 0;
    const hasCto = (h.flags & TRUN.SAMPLE_CTO) !== 0;
    if (n > 0) {
      const noFlags = !hasFlags && defaultFlags === undefined;
      if ((!hasDuration && defaultDuration === undefined) || (!hasSize && defaultSize === undefined) || (noFlags && h.firstSampleFlags === undefined)) {
        throw bad(`track ${id}: sample 0 has no duration, size or flags and no default`);
      }
      if (noFlags && n > 1) throw bad(`track ${id}: sample 1 has no duration, size or flags and no default`);
    }
    const box = truns[r]!.data;
    const view = new DataView(box.buffer, box.byteOffset, box.length);
    let p = h.fieldsAt;
    for (let i = 0; i < n; i++, k++) {
      let duration = defaultDuration!;
      let size = defaultSize!;
      let flags = defaultFlags!;
      let cto = 0;
      if (hasDuration) {
        duration = view.getUint32(p);
        p += 4;
      }
      if (hasSize) {
        size = view.getUint32(p);
        p += 4;
      }
      if (hasFlags) {
        flags = view.getUint32(p);
        p += 4;
      }
      if (hasCto) {
        cto = view.getUint32(p); // the table keeps the bits; version 1 reads them as signed
        p += 4;
      }
      if (i === 0 && h.firstSampleFlags !== undefined) flags = h.firstSampleFlags;
      if (size === 0) throw bad(`track ${id}: sample ${i} of a trun has size 0`);
      pos += size;
      if (pos > payloadEnd) break; // refused below, before reading further
      const w = k * 4;
      words[w] = duration;
      words[w + 1] = size;
      words[w + 2] = flags;
      words[w + 3] = cto;
    }
    if (runStart < payloadStart || pos > payloadEnd) {
      throw bad(`track ${id}: trun data [${runStart}, ${pos}) lies outside the mdat payload`);
    }
    if (pos > runStart) {
      data.push(mdat.data.subarray(runStart - mdatOffset, pos - mdatOffset));
      dataSize += pos - runStart;
      ranges.push([runStart, pos]);
    }
  }
  const samples = new SampleTable(words);
  let time: bigint;
  let duration: bigint;
  let presentationTime: bigint;
  if (tfxd) {
    ({ time, duration } = tfxd);
    presentationTime = time;
  } else if (decodeTime !== undefined) {
    time = decodeTime;
    duration = samples.totalDuration;
    presentationTime = decodeTime + BigInt(samples.count > 0 ? samples.compositionOffset(0) : 0);
  } else {
    throw bad(`track ${id}: fragment has neither tfxd nor tfdt, so its time is unknown`);
  }
  // A sparse event may say its duration is unknown (tfxd 0): the ingest parser, which knows the track,
  // decides; samples without any duration say nothing at all.
  if (duration <= 0n && !tfxd) throw bad(`track ${id}: fragment duration is 0`);
  if (samples.count === 0) throw bad(`track ${id}: fragment has no samples`);
  return {
    value: {
      trackId: id,
      sequenceNumber: 0,
      time,
      presentationTime,
      duration,
      sampleDescriptionIndex: tfhd.sampleDescriptionIndex,
      decodeTime,
      samples,
      data,
      dataSize,
      extra,
    },
    end: pos,
  };
}

/**
 * Commits an ingested track fragment: copies its samples into one allocation of its own (the only copy
 * the origin makes; the ingest buffers can go) and records its times as the format-neutral model has
 * them.
 * @param listed - start and duration as listed (the shift and the clamps already applied)
 * @param shift - added to the encoder's presentation and decode times (a restarted encoder continuing the timeline)
 * @param storedAt - ms since the epoch
 */
export function commitFragment(parsed: ParsedFragment, listed: FragmentTime, shift: bigint, storedAt: number): MediaFragment {
  const firstOffset = BigInt(parsed.samples.count > 0 ? parsed.samples.compositionOffset(0) : 0);
  return packFragment(parsed, {
    time: listed.time,
    duration: listed.duration,
    presentationTime: parsed.presentationTime + shift,
    decodeTime: (parsed.decodeTime ?? parsed.presentationTime - firstOffset) + shift,
    decodeTimeSent: parsed.decodeTime !== undefined,
    storedAt,
  });
}
