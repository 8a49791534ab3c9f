/**
 * Encoder restarts: an encoder that comes back with times that go back further than the resend window
 * (a restarted ffmpeg starts again at 0) did not resend, it restarted. With `encoderRestart=continue`
 * its times are shifted onto the point's timeline: one shift per restart, in one track's timescale,
 * reused by every stream of the same restarted encoder (one POST per track) so that audio and video
 * stay in sync, and so that bitrates keep aligned fragment boundaries.
 */
import type { TrackTimeline } from './timeline';

/** Fragments an encoder resends when it reconnects (the Azure rule: the last two of every track). */
export const RESEND_FRAGMENTS = 2n;

/**
 * Consecutive fragments of one track a redundant encoder may send behind the resend window before it
 * is refused: it fell behind and is not catching up.
 */
export const BEHIND_LIMIT = 5;

/**
 * How far a fragment may start after the end of its track's newest fragment, beyond the wall time that
 * passed since that one arrived: this many of the track's fragment durations. More is a time jump (a
 * wrong clock, or a client pushing far-future times to freeze the track), refused.
 */
export const JUMP_FRAGMENTS = 3n;

/**
 * How far ahead of the previous one a sparse event may be announced, in seconds, beyond the wall time
 * since: SCTE-35 markers come seconds to minutes before their splice time, and events often have
 * duration 0, which gives {@link JUMP_FRAGMENTS} nothing to count.
 */
export const SPARSE_LEAD_SECONDS = 300n;

/**
 * The latest start a fragment of a track may have: the end of its newest fragment, plus the wall time
 * since that one arrived, plus {@link JUMP_FRAGMENTS} durations (and {@link SPARSE_LEAD_SECONDS} for a
 * sparse track). `undefined` for a track with no fragment.
 * @param now - wall-clock ms
 * @param lastArrival - wall-clock ms at which the newest fragment arrived
 */
export function jumpCeiling(timeline: TrackTimeline, timescale: number, now: number, lastArrival: number, sparse = false): bigint | undefined {
  const newest = timeline.newest;
  if (newest === undefined) return undefined;
  const last = timeline.lastDuration!;
  const away = (BigInt(Math.max(0, now - lastArrival)) * BigInt(timescale)) / 1000n;
  return newest + last + away + JUMP_FRAGMENTS * last + (sparse ? SPARSE_LEAD_SECONDS * BigInt(timescale) : 0n);
}

/** A shift of an encoder's times onto the point's timeline, in ticks of `timescale`. */
export interface TimeShift {
  readonly ticks: bigint;
  readonly timescale: number;
}

/** `shift` in ticks of `timescale`, rounded up (a shifted fragment never lands before where it must). */
export function shiftIn(shift: TimeShift, timescale: number): bigint {
  if (shift.timescale === timescale) return shift.ticks;
  const scaled = shift.ticks * BigInt(timescale);
  const d = BigInt(shift.timescale);
  return scaled >= 0n ? (scaled + d - 1n) / d : scaled / d;
}

/**
 * The oldest start a reconnecting encoder may send without being a restart: the resend window reaches
 * {@link RESEND_FRAGMENTS} fragments back from the newest. `undefined` for a track with no fragment yet.
 */
export function resendFloor(timeline: TrackTimeline): bigint | undefined {
  const newest = timeline.newest;
  return newest === undefined ? undefined : newest - RESEND_FRAGMENTS * timeline.lastDuration!;
}

/** What {@link restartShift} needs of each of the point's tracks. */
export interface ShiftTrack {
  readonly timeline: TrackTimeline;
  readonly timescale: number;
  /** Wall-clock ms at which its newest fragment arrived (0: never). */
  readonly lastArrival: number;
}

/**
 * The shift for a restarted encoder whose first fragment (`time`, `duration`, in `track`'s timescale)
 * arrived at `now`:
 * - the `current` shift of an earlier stream of the same restart when it places this fragment where
 *   the track continues (no more than one fragment before its end, and not past the point's newest end
 *   by more than two fragments);
 * - otherwise a new one that starts the fragment after the point's newest end plus the time the encoder
 *   was away: wall time since the newest fragment arrived, less this fragment's own duration (an
 *   encoder needs that long to produce it). Streams that kept going stay in sync with it.
 */
export function restartShift(
  tracks: Iterable<ShiftTrack>,
  track: ShiftTrack,
  time: bigint,
  duration: bigint,
  now: number,
  current: TimeShift | undefined,
): { shift: TimeShift; reused: boolean } {
  const scale = track.timescale;
  const last = track.timeline.lastDuration!;
  const end = track.timeline.newest! + last;
  let pointEnd = end;
  let arrival = track.lastArrival;
  for (const t of tracks) {
    const newest = t.timeline.newest;
    if (newest === undefined) continue;
    const e = shiftIn({ ticks: newest + t.timeline.lastDuration!, timescale: t.timescale }, scale);
    if (e > pointEnd) pointEnd = e;
    if (t.lastArrival > arrival) arrival = t.lastArrival;
  }
  if (current) {
    const at = time + shiftIn(current, scale);
    if (at >= end - last && at <= pointEnd + 2n * last) return { shift: current, reused: true };
  }
  const away = (BigInt(Math.max(0, now - arrival)) * BigInt(scale)) / 1000n;
  const gap = away > duration ? away - duration : 0n;
  return { shift: { ticks: pointEnd + gap - time, timescale: scale }, reused: false };
}
