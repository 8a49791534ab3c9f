/**
 * Track timelines: which fragments of a track exist (every one is served), which of them are published
 * (listed in the manifest) and which are still held back for the lookahead, and the listing of a
 * StreamIndex built from the timelines of its bitrates. The store holds the bytes; this holds only
 * start times and durations.
 */
import type { FragmentTime } from '../model';

/** A fragment in a timeline. */
interface Entry extends FragmentTime {
  payload?: Uint8Array;
  /** Position in the track, counting every fragment ever added: successors are the next positions. */
  readonly seq: number;
  /** The store lost it (a failed write): skipped until it leaves at the head. */
  dropped: boolean;
  /** Bytes the fragment holds (for {@link TrackTimeline.heldBytes}). */
  readonly bytes: number;
  /** Fingerprint of its content, for entity tags (see `etag.ts`). */
  readonly tag: string;
}

/** Arrays whose consumed head is dropped once it is this long and more than half the array. */
const COMPACT_AT = 64;

/**
 * The fragments of one track in time order. Every fragment is served as soon as it is complete; it is
 * published (listed) once `lookahead` successors exist (or the track ends), so that a listed fragment's
 * tfrf is always full.
 */
export class TrackTimeline {
  #list: Entry[] = [];
  #head = 0;
  /** `seq` of `#list[0]`. */
  #base = 0;
  #next = 0;
  /** Entries with a smaller `seq` are published. */
  #publishedUpTo = 0;
  readonly #byTime = new Map<bigint, Entry>();
  #newest: bigint | undefined;
  #lastDuration: bigint | undefined;
  #heldBytes = 0;

  /** Start of the newest fragment ever added (it stays after a trim: older times are duplicates). */
  get newest(): bigint | undefined {
    return this.#newest;
  }

  /** Duration of the newest fragment ever added. */
  get lastDuration(): bigint | undefined {
    return this.#lastDuration;
  }

  /** Bytes of the fragments held back (not published yet), as {@link add} was told. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Fragments in the timeline, published or held (a fragment the store lost counts until it leaves). */
  get size(): number {
    return this.#list.length - this.#head;
  }

  /** The oldest fragment in the timeline, published or held. */
  oldest(): FragmentTime | undefined {
    for (let i = this.#head; i < this.#list.length; i++) if (!this.#list[i]!.dropped) return this.#list[i];
    return undefined;
  }

  /** End of the `n`-th oldest fragment in the timeline (1 = the oldest): trimming to it removes `n`. */
  endOfOldest(n: number): bigint | undefined {
    const e = this.#list[this.#head + n - 1];
    return e && e.time + e.duration;
  }

  /** True when a fragment starting at `time` would be new: later than every fragment added so far. */
  accepts(time: bigint): boolean {
    return this.#newest === undefined || time > this.#newest;
  }

  /**
   * Adds the newest fragment, held back. The caller checked {@link accepts}.
   * @param bytes - what the fragment holds, counted in {@link heldBytes} until it is published
   * @param tag - fingerprint of its content ({@link tagOf} gives it back)
   * @param payload - bytes a listing carries with it (a `manifestOutput` sparse fragment's sample)
   */
  add(f: FragmentTime, bytes = 0, tag = '', payload?: Uint8Array): void {
    const entry: Entry = { time: f.time, duration: f.duration, seq: this.#next++, dropped: false, bytes, tag };
    if (payload) entry.payload = payload;
    this.#heldBytes += bytes;
    this.#list.push(entry);
    this.#byTime.set(entry.time, entry);
    this.#newest = f.time;
    this.#lastDuration = f.duration;
  }

  /** Publishes the held fragments that have `lookahead` successors; returns them, oldest first. */
  publishReady(lookahead: number): FragmentTime[] {
    return this.#publishTo(this.#next - lookahead);
  }

  /** Publishes every held fragment (nothing more will follow them, or the point stops). */
  publishAll(): FragmentTime[] {
    return this.#publishTo(this.#next);
  }

  #publishTo(seq: number): FragmentTime[] {
    const out: FragmentTime[] = [];
    const from = Math.max(this.#publishedUpTo, this.#base + this.#head);
    for (let s = from; s < seq; s++) {
      const e = this.#list[s - this.#base]!;
      if (e.dropped) continue;
      out.push(e);
      this.#heldBytes -= e.bytes;
    }
    if (seq > this.#publishedUpTo) this.#publishedUpTo = seq;
    return out;
  }

  /**
   * The fragment starting exactly at `time`. The entry stands for the fragment as long as it is in the
   * timeline (its identity keys packaged headers).
   */
  find(time: bigint): FragmentTime | undefined {
    return this.#byTime.get(time);
  }

  /**
   * The fragment whose start rounds to `time` as an IEEE-754 double, when exactly one does: players that
   * keep times in doubles (dash.js) name starts above 2^53 by their rounding. Ambiguous: nothing.
   */
  findRounded(time: bigint): FragmentTime | undefined {
    const target = Number(time);
    if (BigInt(target) !== time) return undefined; // no double rounds to a value it cannot hold
    // Doubles at this magnitude are at most time / 2^52 apart: only starts that close can round here.
    const reach = (time >> 52n) + 1n;
    let lo = this.#head;
    let hi = this.#list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#list[mid]!.time < time - reach) lo = mid + 1;
      else hi = mid;
    }
    let found: Entry | undefined;
    for (let i = lo; i < this.#list.length && this.#list[i]!.time <= time + reach; i++) {
      const e = this.#list[i]!;
      if (e.dropped || Number(e.time) !== target) continue;
      if (found) return undefined;
      found = e;
    }
    return found;
  }

  /** The content fingerprint {@link add} was given for a fragment {@link find} gave. */
  tagOf(fragment: FragmentTime): string {
    return (fragment as Entry).tag;
  }

  /** Whether a fragment {@link find} gave is published (listed). */
  isPublished(fragment: FragmentTime): boolean {
    return (fragment as Entry).seq < this.#publishedUpTo;
  }

  /** Up to `n` fragments that follow `fragment` (an entry {@link find} gave; published or held). */
  successors(fragment: FragmentTime, n: number): FragmentTime[] {
    const out: FragmentTime[] = [];
    for (let i = (fragment as Entry).seq + 1 - this.#base; i < this.#list.length && out.length < n; i++) {
      const next = this.#list[i]!;
      if (!next.dropped) out.push(next);
    }
    return out;
  }

  /** How many fragments {@link successors} would give, without making the list. */
  successorCount(fragment: FragmentTime, n: number): number {
    let count = 0;
    for (let i = (fragment as Entry).seq + 1 - this.#base; i < this.#list.length && count < n; i++) {
      if (!this.#list[i]!.dropped) count++;
    }
    return count;
  }

  /** The newest published fragment. */
  newestPublished(): FragmentTime | undefined {
    for (let s = this.#publishedUpTo - 1; s >= this.#base + this.#head; s--) {
      const e = this.#list[s - this.#base]!;
      if (!e.dropped) return e;
    }
    return undefined;
  }

  /** The published fragments, oldest first (a fresh array). */
  published(): FragmentTime[] {
    const out: FragmentTime[] = [];
    const end = Math.min(this.#publishedUpTo - this.#base, this.#list.length);
    for (let i = this.#head; i < end; i++) {
      const e = this.#list[i]!;
      if (!e.dropped) out.push(e);
    }
    return out;
  }

  /** Removes the published fragments that end at or before `end`; returns them, oldest first. */
  trim(end: bigint): FragmentTime[] {
    const out: FragmentTime[] = [];
    while (this.#head < this.#list.length) {
      const e = this.#list[this.#head]!;
      if (e.seq >= this.#publishedUpTo || e.time + e.duration > end) break;
      this.#removeHead(out);
    }
    this.#compact();
    return out;
  }

  /**
   * Removes the fragment starting at `time` and every older one (the store evicted them oldest first);
   * returns those that were still here.
   */
  removeThrough(time: bigint): FragmentTime[] {
    const out: FragmentTime[] = [];
    if (!this.#byTime.has(time)) return out;
    while (this.#head < this.#list.length && this.#list[this.#head]!.time <= time) this.#removeHead(out);
    this.#compact();
    return out;
  }

  /**
   * The store lost the fragment at `time` (not necessarily at the head): it is skipped from now on.
   * @returns its entry, or nothing when the timeline no longer had it
   */
  drop(time: bigint): FragmentTime | undefined {
    const e = this.#byTime.get(time);
    if (!e || e.dropped) return undefined;
    e.dropped = true;
    this.#byTime.delete(time);
    if (e.seq >= this.#publishedUpTo) this.#heldBytes -= e.bytes;
    return e;
  }

  #removeHead(out: FragmentTime[]): void {
    const e = this.#list[this.#head]!;
    this.#list[this.#head] = undefined as unknown as Entry;
    this.#head++;
    if (!e.dropped) {
      this.#byTime.delete(e.time);
      out.push(e);
      if (e.seq >= this.#publishedUpTo) this.#heldBytes -= e.bytes;
    }
  }

  #compact(): void {
    if (this.#head > COMPACT_AT && this.#head * 2 > this.#list.length) {
      this.#list = this.#list.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }
}

/** What the listing of a StreamIndex needs of each of its tracks. */
export interface ListedTrack {
  readonly timeline: TrackTimeline;
  /** Connections feeding the track that have not ended it. */
  readonly live: number;
}

/**
 * The timeline of a StreamIndex: the union of its tracks' published fragments, up to the newest time
 * that every live track has (so each listed time can be fetched at every bitrate still being fed),
 * and within the DVR window.
 * @param window - DVR window in seconds, 0 for the whole event
 */
export function listGroup(tracks: readonly ListedTrack[], lookahead: number, window: number, timescale: number): FragmentTime[] {
  // Live tracks hold the edge back, except one that lags the leader by more than its hold-back plus
  // two fragments (a stalled encoder that keeps its connection open must not freeze the manifest).
  let lead: bigint | undefined;
  let step = 0n;
  for (const t of tracks) {
    const newest = t.timeline.newest;
    if (t.live > 0 && newest !== undefined && (lead === undefined || newest > lead)) lead = newest;
    const n = t.timeline.newestPublished();
    if (n && n.duration > step) step = n.duration;
  }
  const allowance = BigInt(lookahead + 2) * step;
  let edge: bigint | undefined;
  for (const t of tracks) {
    // A bitrate that joined and has published nothing yet caps the edge at its newest fragment: later
    // listed times would answer 412 at that bitrate (VLC ends the stream on that).
    const n = t.timeline.newestPublished()?.time ?? t.timeline.newest;
    if (n === undefined || t.live === 0 || lead === undefined || lead - t.timeline.newest! > allowance) continue;
    if (edge === undefined || n < edge) edge = n;
  }
  if (edge === undefined) {
    for (const t of tracks) {
      const n = t.timeline.newestPublished()?.time;
      if (n !== undefined && (edge === undefined || n > edge)) edge = n;
    }
  }
  if (edge === undefined) return [];
  const all = tracks.length === 1 ? tracks[0]!.timeline.published() : union(tracks.map((t) => t.timeline.published()));
  let end = all.length;
  while (end > 0 && all[end - 1]!.time > edge) end--;
  let start = 0;
  if (window > 0 && end > 0) {
    const last = all[end - 1]!;
    const bound = last.time + last.duration - BigInt(window) * BigInt(timescale);
    while (start < end && all[start]!.time + all[start]!.duration <= bound) start++;
  }
  return start === 0 && end === all.length ? all : all.slice(start, end);
}

/**
 * Where the DVR window of a StreamIndex ends: fragments that end at or before the returned time go.
 * Two fragments beyond the listed window stay: clients that read a slightly older manifest still
 * request them (ffmpeg keeps extra fragments for the same reason).
 * @returns `undefined` when nothing is to be trimmed (no window, or nothing published)
 */
export function trimBound(tracks: readonly ListedTrack[], window: number, timescale: number): bigint | undefined {
  if (window === 0) return undefined;
  let end: bigint | undefined;
  for (const t of tracks) {
    const n = t.timeline.newestPublished();
    if (n && (end === undefined || n.time + n.duration > end)) end = n.time + n.duration;
  }
  if (end === undefined) return undefined;
  const grace = 2n * (tracks[0]!.timeline.newestPublished()?.duration ?? 0n);
  return end - BigInt(window) * BigInt(timescale) - grace;
}

/** Merges time-ordered timelines, keeping the first entry of each start time. */
function union(lists: FragmentTime[][]): FragmentTime[] {
  // A linear k-way merge (each list is oldest first): sorting the concatenation cost a 2 h window's
  // rebuild ~1.5 ms. Ties go to the earlier list.
  const at = new Array<number>(lists.length).fill(0);
  const out: FragmentTime[] = [];
  for (;;) {
    let best = -1;
    let time = 0n;
    for (let i = 0; i < lists.length; i++) {
      const f = lists[i]![at[i]!];
      if (f !== undefined && (best === -1 || f.time < time)) {
        best = i;
        time = f.time;
      }
    }
    if (best === -1) return out;
    const f = lists[best]![at[best]!++]!;
    if (out.length === 0 || out[out.length - 1]!.time !== time) out.push(f);
  }
}
