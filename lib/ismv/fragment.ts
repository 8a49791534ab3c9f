/**
 * Turns a fragment read from a Smooth file into one to send: its tfxd (and tfdt) re-timed, its track
 * renumbered, no tfrf, and (the simulated encoder at a loop seam) its overlapping audio head dropped.
 * The on-demand server sends fragments at their own times the same way.
 */
import { parseMovieFragment } from '../ingest/fragment';
import { SampleTable } from '../media';
import { retimeMoof } from '../mp4/edit';
import { writeMoof } from '../mp4/writer';
import type { RawFragment, SourceTrack } from './source';

/** Where a fragment read from a file goes: which one, at what time, and how its times move. */
export interface FragmentPlacement {
  /** Index of the source fragment. */
  index: number;
  /** Output start time (tfxd), track timescale. */
  time: bigint;
  /** Output duration (tfxd). */
  duration: bigint;
  /** Added to the source's times (e.g. to a tfdt). */
  shift: bigint;
  /**
   * Ticks of the source fragment that lie before `time`: positive when it overlaps what came before
   * (leading audio samples that lie mostly in it are dropped), negative for a gap that `duration`
   * absorbs, else 0.
   */
  overlap: bigint;
}

/** A fragment ready to send. `moof` and `mdat` are not shared with any other fragment. */
export interface OutgoingFragment {
  moof: Buffer;
  mdat: Buffer;
  /** tfxd start and duration, track timescale. */
  time: bigint;
  duration: bigint;
}

/**
 * Builds the outgoing fragment.
 * @param trackId - the track's `track_ID` in the outgoing stream
 * @param sequenceNumber - the outgoing `mfhd.sequence_number`
 */
export function buildFragment(
  raw: RawFragment,
  track: SourceTrack,
  plan: FragmentPlacement,
  trackId: number,
  sequenceNumber: number,
): OutgoingFragment {
  const trafs = track.fragments[plan.index]!.trafs;
  const trim = plan.overlap > 0n && track.info.type === 'audio';
  if (trafs === 1 && !trim) {
    // The common case: the file's own moof, re-timed; the mdat goes out as read.
    const moof = retimeMoof(raw.moof, {
      time: plan.time,
      duration: plan.duration,
      decodeTimeShift: plan.shift,
      trackId,
      sequenceNumber,
      dataOffsetDelta: -raw.gap,
    });
    return { moof, mdat: raw.mdat.data, time: plan.time, duration: plan.duration };
  }
  // Several tracks in one moof, or samples to drop: rewrite the fragment with the library's writer.
  const parsed = parseMovieFragment(raw.moof, raw.mdat, raw.moof.data.length + raw.gap, (id) =>
    id === track.fileTrackId ? track.defaults : undefined,
  ).find((f) => f.trackId === track.fileTrackId);
  if (!parsed) throw new Error(`fragment ${plan.index} has no traf for track ${track.fileTrackId}`);
  // Every AAC sample is a sync sample, so leading ones can go: those lying mostly before the seam.
  let drop = 0;
  let dropped = 0n;
  let droppedBytes = 0;
  if (trim) {
    while (drop < parsed.samples.count - 1) {
      const d = BigInt(parsed.samples.duration(drop));
      if (dropped + d / 2n > plan.overlap) break;
      dropped += d;
      droppedBytes += parsed.samples.size(drop);
      drop++;
    }
  }
  const data = drop === 0 ? parsed.data : [Buffer.concat(parsed.data).subarray(droppedBytes)];
  const samples = drop === 0 ? parsed.samples : parsed.samples.slice(drop);
  const dataSize = parsed.dataSize - droppedBytes;
  const { head, moofSize } = writeMoof({
    trackId,
    sequenceNumber,
    sampleDescriptionIndex: parsed.sampleDescriptionIndex,
    decodeTime: parsed.decodeTime === undefined ? undefined : parsed.decodeTime + plan.shift + dropped,
    samples,
    // sdtp has one entry per sample: it would no longer match once samples are dropped.
    extra: drop === 0 ? parsed.extra : parsed.extra.filter((b) => b.toString('latin1', 4, 8) !== 'sdtp'),
    tfxd: { time: plan.time, duration: plan.duration },
    dataSize,
  });
  return {
    moof: head.subarray(0, moofSize),
    mdat: Buffer.concat([head.subarray(moofSize), ...data], 8 + dataSize),
    time: plan.time,
    duration: plan.duration,
  };
}

/** ISO 14496-12 sample flags of a sync sample (`sample_depends_on` 2: depends on no other), as ffmpeg writes them. */
const SYNC_SAMPLE = 0x02000000;

/**
 * A fragment of one made-up sample (a sparse track's caption document or event message), written the
 * way {@link buildFragment} rewrites media fragments: `moof` = `mfhd` + `traf` (`tfhd`, `trun`, `tfxd`),
 * then the `mdat`. The sample lasts the whole fragment and is a sync sample.
 * @param time - tfxd start, track timescale
 * @param duration - tfxd duration and the sample's duration (at most 2^32 − 1 ticks)
 * @throws RangeError for a duration the trun cannot carry or an empty sample
 */
export function sampleFragment(sample: Buffer, trackId: number, sequenceNumber: number, time: bigint, duration: bigint): OutgoingFragment {
  if (duration < 0n || duration > 0xffffffffn) throw new RangeError('a one-sample fragment lasts at most 2^32 - 1 ticks');
  if (sample.length === 0) throw new RangeError('a sample has at least one byte');
  const samples = SampleTable.from([{ duration: Number(duration), size: sample.length, flags: SYNC_SAMPLE, compositionOffset: 0 }]);
  const { head, moofSize } = writeMoof({
    trackId,
    sequenceNumber,
    sampleDescriptionIndex: undefined,
    samples,
    extra: [],
    tfxd: { time, duration },
    dataSize: sample.length,
  });
  return { moof: head.subarray(0, moofSize), mdat: Buffer.concat([head.subarray(moofSize), sample]), time, duration };
}
