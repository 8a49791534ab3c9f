/**
 * Where a pulled track stands in its upstream's timeline, and reading that timeline: where to start,
 * where to go on, how long a request may be held.
 */
import type { TrackInfo } from '../model';
import { SmoothError } from '../errors';
import { UUID_TFRF, UUID_TFXD, parseTfrf, parseTfxd } from '../mp4/boxes';
import { children, childrenOf } from '../mp4/reader';
import type { UpstreamStream } from './manifest';

/** One pulled track: where it is in the upstream's timeline. */
export interface PulledTrack {
  stream: UpstreamStream;
  info: TrackInfo;
  /** Its `track_ID` in the ingest stream the puller writes. */
  trackId: number;
  /** The next fragment to ask for; `undefined` until a manifest says where to go on. */
  next: bigint | undefined;
  /** Start of the newest fragment fed to the point. */
  held: bigint | undefined;
  /** The loop following it runs. */
  running: boolean;
  /** The newest fragment fed came with an empty tfrf: the upstream may have ended the track. */
  last: boolean;
  /** The upstream ended the track (its last fragment is held, later times are not found). */
  ended: boolean;
}

/** Ms an upstream may hold a request for a track's newest fragment (until its successor exists): two fragments. */
export function heldFor(t: PulledTrack): number {
  return (Number(t.stream.fragments[t.stream.fragments.length - 1]?.duration ?? 0n) / t.stream.timescale) * 2000;
}

/** The `track_ID` of an upstream fragment response's `tfhd` (0 when there is none to read). */
export function upstreamTrackId(bytes: Buffer): number {
  for (const box of children(bytes)) {
    if (box.type !== 'moof') continue;
    for (const traf of childrenOf(box)) {
      if (traf.type !== 'traf') continue;
      for (const c of childrenOf(traf)) if (c.type === 'tfhd' && c.data.length >= c.headerSize + 8) return c.data.readUInt32BE(c.headerSize + 4);
    }
  }
  return 0;
}


/**
 * Where a track starts: after what it holds, or `backlog` seconds (at most the point's window, in
 * seconds, 0 = none) before the end of the upstream's newest listed fragment.
 */
export function startOf(stream: UpstreamStream, held: bigint | undefined, backlog: number, window: number): bigint | undefined {
  const fragments = stream.fragments;
  if (fragments.length === 0) return undefined;
  if (held !== undefined) return fragments.find((f) => f.time > held)?.time;
  const seconds = window > 0 ? Math.min(backlog, window) : backlog;
  const last = fragments[fragments.length - 1]!;
  const from = last.time + last.duration - BigInt(seconds) * BigInt(stream.timescale);
  return (fragments.find((f) => f.time >= from) ?? last).time;
}

/** The next fragment the last manifest lists after what the track holds. */
export function resync(t: PulledTrack): bigint | undefined {
  const held = t.held;
  return t.stream.fragments.find((f) => held === undefined || f.time > held)?.time;
}

/**
 * Checks an upstream fragment response (one `moof` with one `traf`, then one `mdat`) and numbers its
 * track `trackId` in place (the bytes are the puller's own).
 * @returns its tfxd start and duration, the start its tfrf announces next, and whether that tfrf is
 *   empty (nothing follows yet, or ever)
 * @throws SmoothError ERR_BAD_UPSTREAM for anything else
 */
export function readUpstreamFragment(
  bytes: Buffer,
  trackId: number,
): { start: bigint | undefined; duration: bigint | undefined; following: bigint | undefined; last: boolean } {
  let moof: { data: Buffer; headerSize: number; type: string; uuid: string | undefined } | undefined;
  let mdat = false;
  for (const box of children(bytes)) {
    if (box.type === 'moof' && !moof && !mdat) moof = box;
    else if (box.type === 'mdat' && moof && !mdat) mdat = true;
    else throw new SmoothError('ERR_BAD_UPSTREAM', `a fragment response holds an unexpected '${box.type}' box`);
  }
  if (!moof || !mdat) throw new SmoothError('ERR_BAD_UPSTREAM', 'a fragment response is not one moof and one mdat');
  const trafs = [...childrenOf(moof)].filter((b) => b.type === 'traf');
  if (trafs.length !== 1) throw new SmoothError('ERR_BAD_UPSTREAM', `a fragment response holds ${trafs.length} track fragments`);
  let start: bigint | undefined;
  let duration: bigint | undefined;
  let following: bigint | undefined;
  let last = false;
  for (const box of childrenOf(trafs[0]!)) {
    if (box.type === 'tfhd') {
      if (box.data.length < box.headerSize + 8) throw new SmoothError('ERR_BAD_UPSTREAM', 'a fragment response has a truncated tfhd');
      // The header this stream sent numbers the tracks: the upstream's ids, unless they repeat.
      box.data.writeUInt32BE(trackId, box.headerSize + 4);
    } else if (box.type === 'uuid' && box.uuid === UUID_TFXD) {
      const x = parseTfxd(box);
      start = x.time;
      duration = x.duration;
    } else if (box.type === 'uuid' && box.uuid === UUID_TFRF) {
      const entries = parseTfrf(box);
      following = entries[0]?.time;
      last = entries.length === 0;
    }
  }
  return { start, duration, following, last };
}
