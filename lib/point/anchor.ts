/**
 * The anchor of a session's DASH and HLS timeline: which wall-clock instant output time 0 stands for,
 * and which media time it is. Ingest times are kept as they came (10 MHz ticks since the epoch, for a
 * UTC-locked encoder: above 2^53); the outputs subtract `base` seconds from every time, so what they
 * write stays below 2^53 and exact for 2^53 / timescale seconds (28 years at 10 MHz), with no
 * rescaling of samples. `base` is ten seconds before the session's first fragment, so the AAC priming
 * that starts audio a few ms before it, or a track that starts a little earlier than the first fragment
 * to arrive, still gives a positive `tfdt`, and every time the outputs write stays small.
 *
 * The anchor is chosen once per session, at its first fragment, and saved with the point's state, so
 * that players keep their timeline over a process restart when the encoder goes on with its times.
 */

/** The anchor of one session. */
export interface Anchor {
  /** Wall-clock ms of output time 0 (HLS program date-times count from it). */
  readonly availabilityStart: number;
  /** Media seconds subtracted from every time (whole seconds, so exact in every timescale). */
  readonly base: bigint;
  /**
   * Whole seconds of output time at which the session's first fragment starts (rounded down): the live
   * MPD's `presentationTimeOffset`, so that its SegmentTimeline starts at period time 0, as GStreamer's
   * DASH demuxers need to find the live edge.
   */
  readonly start: bigint;
}

/** Seconds of output time before the session's first fragment. */
const MARGIN = 10n;
/** Ingest times within this many seconds of the wall clock are taken as UTC-locked. */
const UTC_LOCKED = 86_400;
/**
 * A saved anchor is kept for a new first fragment whose end it places within this many seconds of
 * now: the encoder went on with its times while the process restarted.
 */
const SAVED_SLACK = 60;

/** Whole seconds of `ticks` (rounded down) in `timescale`. */
function floorSeconds(ticks: bigint, timescale: number): bigint {
  const ts = BigInt(timescale);
  const q = ticks / ts;
  return ticks < 0n && q * ts !== ticks ? q - 1n : q;
}

/**
 * The anchor for a session whose first fragment spans `start` to `end` (ticks of `timescale`) and was
 * complete at `now` (wall-clock ms). Times close to the wall clock are UTC-locked: output time 0 is
 * `base` seconds after the epoch, so program date-times are the encoder's own. Others are placed so that
 * the first fragment ends now.
 */
export function chooseAnchor(start: bigint, end: bigint, timescale: number, now: number): Anchor {
  const base = floorSeconds(start, timescale) - MARGIN;
  const utc = Math.abs(Number(floorSeconds(end, timescale)) - now / 1000) < UTC_LOCKED;
  const availabilityStart = utc ? Number(base) * 1000 : Math.round(now - outputSeconds(end, timescale, base) * 1000);
  return { availabilityStart, base, start: MARGIN };
}

/** Output time of `ticks` in seconds, as a double (for wall-clock arithmetic only, never for URLs). */
export function outputSeconds(ticks: bigint, timescale: number, base: bigint): number {
  const ts = BigInt(timescale);
  const out = ticks - base * ts;
  return Number(out / ts) + Number(out % ts) / timescale;
}

/**
 * Whether a saved anchor still fits a session whose first fragment ends at `end` at `now`: it places
 * that end within a minute of the wall clock (the encoder kept its timeline across the restart).
 */
export function anchorFits(anchor: Anchor, end: bigint, timescale: number, now: number): boolean {
  const wall = anchor.availabilityStart + outputSeconds(end, timescale, anchor.base) * 1000;
  return Math.abs(wall - now) <= SAVED_SLACK * 1000;
}

/** The anchor as the state file keeps it (seconds as decimal strings), or `undefined` for anything else. */
export function anchorFromJson(value: unknown): Anchor | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { availabilityStart, base, start } = value as { availabilityStart?: unknown; base?: unknown; start?: unknown };
  const seconds = (v: unknown): v is string => typeof v === 'string' && /^-?\d{1,15}$/.test(v);
  if (typeof availabilityStart !== 'number' || !Number.isSafeInteger(availabilityStart)) return undefined;
  if (!seconds(base) || !seconds(start)) return undefined;
  return { availabilityStart, base: BigInt(base), start: BigInt(start) };
}

/** The state file's form of an anchor. */
export function anchorToJson(anchor: Anchor): { availabilityStart: number; base: string; start: string } {
  return { availabilityStart: anchor.availabilityStart, base: String(anchor.base), start: String(anchor.start) };
}
