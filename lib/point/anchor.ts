/**
 * The anchor of a session's DASH and HLS timeline: which wall-clock instant output time 0 stands for,
 * and which media time it is. Ingest times are kept as they came (10 MHz ticks since the epoch, for a
 * UTC-locked encoder: above 2^53); the outputs subtract `base` seconds from every time, so what they
 * write stays below 2^53 and exact for 2^53 / timescale seconds (28 years at 10 MHz), with no
 * rescaling of samples. `base` is the start of the UTC day before the first fragment's, so the AAC
 * priming that starts audio a few ms before 0 still gives a positive `tfdt`.
 *
 * The anchor is chosen once per session, at its first fragment, and saved with the point's state, so
 * that players keep their timeline over a process restart when the encoder goes on with its times.
 */

/** The anchor of one session. */
export interface Anchor {
  /** Wall-clock ms of output time 0 (DASH `availabilityStartTime`). */
  readonly availabilityStart: number;
  /** Media seconds subtracted from every time (whole seconds, so exact in every timescale). */
  readonly base: bigint;
}

const DAY = 86_400n;
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
 * The anchor for a session whose first fragment ends at `end` (ticks of `timescale`) and was complete
 * at `now` (wall-clock ms). Times close to the wall clock are UTC-locked: output time 0 is `base` seconds
 * after the epoch, so program date-times are the encoder's own. Others are placed so that the first
 * fragment ends now.
 */
export function chooseAnchor(end: bigint, timescale: number, now: number): Anchor {
  const seconds = floorSeconds(end, timescale);
  const day = seconds >= 0n ? seconds / DAY : (seconds - DAY + 1n) / DAY;
  const base = (day - 1n) * DAY;
  if (Math.abs(Number(seconds) - now / 1000) < UTC_LOCKED) return { availabilityStart: Number(base) * 1000, base };
  return { availabilityStart: Math.round(now - outputSeconds(end, timescale, base) * 1000), base };
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

/** The anchor as the state file keeps it (`base` as a decimal string), or `undefined` for anything else. */
export function anchorFromJson(value: unknown): Anchor | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { availabilityStart, base } = value as { availabilityStart?: unknown; base?: unknown };
  if (typeof availabilityStart !== 'number' || !Number.isSafeInteger(availabilityStart)) return undefined;
  if (typeof base !== 'string' || !/^-?\d{1,15}$/.test(base)) return undefined;
  return { availabilityStart, base: BigInt(base) };
}

/** The state file's form of an anchor. */
export function anchorToJson(anchor: Anchor): { availabilityStart: number; base: string } {
  return { availabilityStart: anchor.availabilityStart, base: String(anchor.base) };
}
