/**
 * Splits an ingested `moof` + `mdat` into one fragment per track fragment (`traf`), with every sample
 * field resolved (trun → tfhd → trex defaults) and the sample bytes located in the `mdat`.
 */
import { SmoothError } from '../errors';
import {
  TFHD,
  Trex,
  UUID_TFRF,
  UUID_TFXD,
  parseMfhd,
  parseTfdt,
  parseTfhd,
  parseTfxd,
  parseTrun,
} from '../mp4/boxes';
import { MediaFragment, Sample, packFragment } from '../media';
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
  samples: Sample[];
  /** Sample bytes, in order: views into the ingested mdat. */
  data: Buffer[];
  /** Total bytes in `data`. */
  dataSize: number;
  /** Other boxes of the traf to pass through (sdtp, PIFF encryption uuids), as views. */
  extra: Buffer[];
}

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
  for (const child of childrenOf(moof)) {
    if (child.type === 'mfhd') sequenceNumber = parseMfhd(child);
    if (child.type !== 'traf') continue;
    const fragment = parseTraf(child, mdat, mdatOffset, trexOf, previousEnd);
    previousEnd = fragment.end;
    fragment.value.sequenceNumber = sequenceNumber;
    out.push(fragment.value);
  }
  if (out.length === 0) throw bad('moof carries no traf');
  return out;
}

function parseTraf(
  traf: Box,
  mdat: Box,
  mdatOffset: number,
  trexOf: (trackId: number) => Trex | undefined | false,
  previousEnd: number,
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
  const trex = trexOf(tfhd.trackId);
  if (trex === false) throw bad(`traf for track_ID ${tfhd.trackId}, which the stream header does not describe`);
  if (tfhd.flags & TFHD.BASE_DATA_OFFSET) {
    throw bad('tfhd base-data-offset is not allowed in live ingest (PIFF forbids it)');
  }
  const base = tfhd.flags & TFHD.DEFAULT_BASE_IS_MOOF ? 0 : previousEnd;
  const samples: Sample[] = [];
  const data: Buffer[] = [];
  let dataSize = 0;
  let pos = base;
  const payloadStart = mdatOffset + mdat.headerSize;
  const payloadEnd = mdatOffset + mdat.data.length;
  for (const box of truns) {
    const trun = parseTrun(box);
    if (trun.dataOffset !== undefined) pos = base + trun.dataOffset;
    const runStart = pos;
    for (let i = 0; i < trun.samples.length; i++) {
      const s = trun.samples[i]!;
      const duration = s.duration ?? tfhd.defaultSampleDuration ?? trex?.defaultSampleDuration;
      const size = s.size ?? tfhd.defaultSampleSize ?? trex?.defaultSampleSize;
      const flags =
        (i === 0 ? trun.firstSampleFlags : undefined) ?? s.flags ?? tfhd.defaultSampleFlags ?? trex?.defaultSampleFlags;
      if (duration === undefined || size === undefined || flags === undefined) {
        throw bad(`track ${tfhd.trackId}: sample ${i} has no duration, size or flags and no default`);
      }
      // The trun's own record becomes the resolved sample (it is not used elsewhere): one object per
      // sample instead of two, which the ingest benchmark showed as garbage-collection time.
      s.duration = duration;
      s.size = size;
      s.flags = flags;
      samples.push(s as Sample);
      pos += size;
    }
    if (runStart < payloadStart || pos > payloadEnd) {
      throw bad(`track ${tfhd.trackId}: trun data [${runStart}, ${pos}) lies outside the mdat payload`);
    }
    if (pos > runStart) {
      data.push(mdat.data.subarray(runStart - mdatOffset, pos - mdatOffset));
      dataSize += pos - runStart;
    }
  }
  let time: bigint;
  let duration: bigint;
  let presentationTime: bigint;
  if (tfxd) {
    ({ time, duration } = tfxd);
    presentationTime = time;
  } else if (decodeTime !== undefined) {
    time = decodeTime;
    duration = samples.reduce((sum, s) => sum + BigInt(s.duration), 0n);
    presentationTime = decodeTime + BigInt(samples[0]?.compositionOffset ?? 0);
  } else {
    throw bad(`track ${tfhd.trackId}: fragment has neither tfxd nor tfdt, so its time is unknown`);
  }
  if (duration <= 0n) throw bad(`track ${tfhd.trackId}: fragment duration is 0`);
  if (samples.length === 0) throw bad(`track ${tfhd.trackId}: fragment has no samples`);
  return {
    value: {
      trackId: tfhd.trackId,
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
  const firstOffset = BigInt(parsed.samples[0]?.compositionOffset ?? 0);
  return packFragment(parsed, {
    time: listed.time,
    duration: listed.duration,
    presentationTime: parsed.presentationTime + shift,
    decodeTime: (parsed.decodeTime ?? parsed.presentationTime - firstOffset) + shift,
    decodeTimeSent: parsed.decodeTime !== undefined,
    storedAt,
  });
}
