/**
 * The CMAF media segment (ISO/IEC 23000-19 clause 7: a CMAF fragment, `moof` + `mdat`) of a stored
 * fragment, for the DASH and HLS outputs: the same samples as the Smooth response, in a movie fragment
 * a generic ISO BMFF player can place on its timeline without a Smooth manifest.
 *
 *   moof
 *     mfhd  sequence_number (the output's, else as ingested)
 *     traf
 *       tfhd  track_ID of the init segment, default-base-is-moof, [sample_description_index]
 *       tfdt  v1: decode time of the first sample (ISO 14496-12 §8.8.12)
 *       trun  every sample field; data_offset → first byte after the mdat header; v1 only when a
 *             composition offset is negative (as written by writeMoof)
 *       [sdtp] [sbgp] [sgpd]  passed through from the ingest traf
 *   mdat header (8 bytes); the stored sample bytes follow on the wire
 *
 * Differences from the Smooth response, following dash.js `MssFragmentMoofProcessor.convertFragment`:
 * no `tfxd`/`tfrf` (timing lives in `tfdt`, and the next fragments in the MPD or playlist), no PIFF
 * `uuid` boxes at all (sample encryption would need senc/saio/saiz rewritten, which this output does
 * not do), a `tfdt` always (CMAF fragments carry one; hls.js reads the start time from nothing else),
 * and default-base-is-moof (ISO 14496-12 §8.8.7: data offsets relative to this moof, never to a byte
 * position in the ingest POST, which is what ffmpeg's base-data-offset points into).
 */
import type { FragmentMeta } from '../media';
import { TFHD } from '../mp4/boxes';
import { type MoofHead, writeMoof } from '../mp4/writer';

/** Passthrough boxes that stay valid in a CMAF segment: they describe samples by index only. */
const KEPT = new Set(['sdtp', 'sbgp', 'sgpd']);

const MAX_U64 = (1n << 64n) - 1n;

/** Options of {@link cmafSegment}. */
export interface CmafSegmentOptions {
  /** `tfhd.track_ID`: the track_ID of the init segment the segment is played with. */
  trackId: number;
  /** `mfhd.sequence_number`; defaults to the ingested one. */
  sequenceNumber?: number;
  /**
   * Added to the fragment's decode time to give `tfdt`: the output's shift that makes every track's
   * times non-negative (AAC priming) or rebases them. Default 0.
   */
  decodeTimeOffset?: bigint;
}

/**
 * Writes the header of a CMAF media segment (`moof` + the 8-byte `mdat` header) for a stored
 * fragment. The sample bytes are not copied: send `head`, then the fragment's stored data.
 *
 * `tfdt` = `f.decodeTime + decodeTimeOffset`, where `f.decodeTime` is already the ingested `tfdt` or,
 * without one, `tfxd` minus the first composition offset (the decode time of the first sample, not
 * its presentation time).
 *
 * @param f - the stored fragment
 * @param options - track_ID, sequence number and decode time offset of the output
 * @returns the segment head and the size of its moof
 * @throws RangeError when the resulting decode time is negative or above 2^64 − 1 (`tfdt` is unsigned:
 *   the caller must choose an offset that keeps every track at or above 0)
 */
export function cmafSegment(f: FragmentMeta, options: CmafSegmentOptions): MoofHead {
  const decodeTime = f.decodeTime + (options.decodeTimeOffset ?? 0n);
  if (decodeTime < 0n) {
    throw new RangeError(`decode time ${decodeTime} is negative: tfdt is unsigned, the offset must cover it`);
  }
  if (decodeTime > MAX_U64) throw new RangeError(`decode time ${decodeTime} does not fit a 64-bit tfdt`);
  // The box type is bytes 4..8 of every passthrough box (they are stored as complete boxes).
  const extra = f.extra.filter((b) => b.length >= 8 && KEPT.has(b.toString('latin1', 4, 8)));
  return writeMoof({
    sequenceNumber: options.sequenceNumber ?? f.sequenceNumber,
    trackId: options.trackId,
    tfhdFlags: TFHD.DEFAULT_BASE_IS_MOOF,
    sampleDescriptionIndex: f.sampleDescriptionIndex,
    decodeTime,
    samples: f.samples,
    extra,
    dataSize: f.dataSize,
  });
}
