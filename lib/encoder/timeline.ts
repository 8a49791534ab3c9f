/**
 * The looping timeline of the simulated encoder: where each source fragment lands in loop `k`, in exact
 * `bigint` arithmetic (live times start at the current UTC time in 100-ns units, beyond 2^53).
 *
 * Decisions:
 * - **One loop period for every track**: the total duration of the reference track (the first video
 *   track, else the first track), from its first fragment's start to its last fragment's end. Loop `k`
 *   of every track is shifted by `k` periods, so audio and video stay in sync however long it runs.
 *   Another track whose content is longer or shorter than the period would drift or overlap if it were
 *   looped on its own length.
 * - **Each track's timeline is continuous at the loop seam**: the first fragment of a loop (after the
 *   first) starts exactly where the track's previous loop ended; its end stays where the period puts
 *   it. ffmpeg's AAC starts one frame early (priming, −213 333 ticks), so without this an audio loop
 *   would overlap the previous one by a frame; with it the overlapping head is dropped (whole samples,
 *   see `overlap`) and the fragment is listed from the seam, the same rule the library applies to a
 *   negative first start. A track shorter than the period gets the gap added to that fragment's
 *   listed duration instead. Either way the manifest has no gap and no overlap, and times only grow.
 */
import type { TrackType } from '../model';

/** Ticks per second of the `start` value: 100-ns units, the Smooth default timescale. */
import type { FragmentPlacement } from '../ismv/fragment';

export const START_TIMESCALE = 10_000_000n;

/** What the timeline needs of a track. */
export interface TimelineTrack {
  type: TrackType;
  timescale: number;
  /** Source fragments in time order (track timescale). */
  fragments: ReadonlyArray<{ readonly time: bigint; readonly duration: bigint }>;
}

/** Where one source fragment goes in one loop. */
export interface FragmentPlan extends FragmentPlacement {
  track: number;
  loop: number;
}

/** Floor division for bigint (`/` truncates towards zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** The loop arithmetic of a set of tracks. Pure: no I/O, no clock. */
export class LoopTimeline {
  /** Index of the track whose total duration is the loop period. */
  readonly reference: number;
  /** Loop period in the reference track's timescale. */
  readonly period: bigint;
  /** Loop period in seconds (for display). */
  readonly periodSeconds: number;
  readonly #tracks: readonly TimelineTrack[];
  readonly #start: bigint;

  /**
   * @param tracks - every track, each with at least one fragment
   * @param start - output time of the reference track's first fragment, in 100-ns units (≥ 0)
   * @throws RangeError for a negative start, an empty track or a zero-length reference track
   */
  constructor(tracks: readonly TimelineTrack[], start: bigint) {
    if (start < 0n) throw new RangeError('start must not be negative');
    if (tracks.length === 0 || tracks.some((t) => t.fragments.length === 0 || t.timescale <= 0)) {
      throw new RangeError('every track needs fragments and a timescale');
    }
    this.#tracks = tracks;
    this.#start = start;
    const video = tracks.findIndex((t) => t.type === 'video');
    this.reference = video === -1 ? 0 : video;
    const ref = tracks[this.reference]!.fragments;
    const last = ref[ref.length - 1]!;
    this.period = last.time + last.duration - ref[0]!.time;
    if (this.period <= 0n) throw new RangeError('the reference track has no duration');
    this.periodSeconds = Number(this.period) / tracks[this.reference]!.timescale;
  }

  /** `value` in the reference timescale, converted to track `track`'s timescale (rounded down). */
  #scale(value: bigint, track: number): bigint {
    const ts = BigInt(this.#tracks[track]!.timescale);
    const refTs = BigInt(this.#tracks[this.reference]!.timescale);
    return ts === refTs ? value : floorDiv(value * ts, refTs);
  }

  /** The output time of the stream's start (the reference track's first fragment), in track `track`'s timescale. */
  base(track: number): bigint {
    return floorDiv(this.#start * BigInt(this.#tracks[track]!.timescale), START_TIMESCALE);
  }

  /** What loop `loop` adds to the source times of track `track`. */
  shift(track: number, loop: number): bigint {
    const origin = this.#tracks[this.reference]!.fragments[0]!.time;
    return this.base(track) + this.#scale(BigInt(loop) * this.period - origin, track);
  }

  /** End of the track's last fragment in loop `loop`, before any seam adjustment of the next loop. */
  #loopEnd(track: number, loop: number): bigint {
    const fragments = this.#tracks[track]!.fragments;
    const last = fragments[fragments.length - 1]!;
    return last.time + last.duration + this.shift(track, loop);
  }

  /**
   * Where fragment `index` of track `track` goes in loop `loop` (0-based).
   * @returns the plan, or `undefined` when the previous loop already covers the whole fragment
   */
  plan(track: number, loop: number, index: number): FragmentPlan | undefined {
    const fragments = this.#tracks[track]!.fragments;
    const f = fragments[index];
    if (!f) throw new RangeError(`track ${track} has no fragment ${index}`);
    const shift = this.shift(track, loop);
    const start = f.time + shift;
    const end = start + f.duration;
    const natural: FragmentPlan = { track, loop, index, time: start, duration: f.duration, shift, overlap: 0n };
    if (loop === 0) return natural;
    const seam = this.#loopEnd(track, loop - 1);
    if (end <= seam) return undefined;
    // The loop's first fragment that reaches past the seam starts at the seam.
    let first = 0;
    while (fragments[first]!.time + fragments[first]!.duration + shift <= seam) first++;
    if (index !== first || start === seam) return natural;
    return { ...natural, time: seam, duration: end - seam, overlap: seam - start };
  }

  /**
   * Microseconds from the stream's start to the end of a planned fragment: when a live encoder would
   * have finished capturing it, hence when it is sent.
   */
  dueMicros(plan: FragmentPlan): number {
    const ts = this.#tracks[plan.track]!.timescale;
    return Number(((plan.time + plan.duration - this.base(plan.track)) * 1_000_000n) / BigInt(ts));
  }
}
