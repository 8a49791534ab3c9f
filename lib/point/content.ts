/**
 * What a publishing point holds and serves: its tracks and their timelines, the store with their
 * bytes, the manifest built from the timelines, and fragments packaged for clients. The point's
 * lifecycle and its ingest sessions live in the façade (`index.ts`); this part answers "what is there,
 * and what does a client get for it".
 */
import type { PointSettings } from '../definition';
import { SmoothError } from '../errors';
import type { MediaFragment, TrackHeader } from '../media';
import type { ManifestSnapshot, StreamSnapshot } from '../manifest/types';
import { FragmentTime, MANIFEST_OUTPUT_MAX, SCTE35_SCHEME, TrackInfo } from '../model';
import type { MoofHead } from '../mp4/writer';
import type { ResolvedOptions } from '../options';
import { CMAF_TRACK_ID } from '../mp4/init';
import { PackageCache, type PackagedHead } from '../package/cache';
import { cmafSegment } from '../package/cmaf';
import { ttmlSegment } from '../package/ttml';
import { smoothFragment } from '../package/smooth';
import { Awaitable, EvictReason, FragmentStore, StoredFragment, isThenable } from '../store/types';
import type { FailureSource, PointEvents } from './events';
import type { BudgetHolder, ByteBudget } from './limits';
import type { Anchor } from './anchor';
import { contentTag, fragmentTag, liveMaxAge } from './etag';
import { PointOutputs, RenderedOutput, isTtml } from './outputs';
import { SPARSE_LEAD_SECONDS, TimeShift, resendFloor, restartShift, shiftIn } from './restart';
import { listGroups, parentOf, rescale } from './listing';
import { trimBound } from './timeline';
import { Track, TrackRegistry } from './tracks';

/** A rendered manifest, cached until the timeline changes. */
export interface RenderedManifest {
  body: Buffer;
  contentType: string;
  etag: string;
  lastModified: number;
  /** Seconds a client or cache may keep it: at most half the shortest fragment duration. */
  maxAge: number;
}

/**
 * Result of a fragment lookup; `fragment` is the point's own entry for it (start and duration), `time`
 * its exact start (a request may name it by its double rounding).
 */
export type FragmentLookup =
  | {
      status: 'ok';
      track: TrackInfo;
      key: string;
      time: bigint;
      fragment: FragmentTime;
      /** Entries the Smooth response's tfrf holds (the successors that exist now, at most L); −1: no tfrf. */
      tfrf: number;
      /**
       * The response will not change any more: its tfrf is full, or the fragment is final (nothing
       * follows it). Until then it is served with a short lifetime and an ETag that counts the entries.
       */
      complete: boolean;
      /** Entity tag of the fragment's bytes in this session (the tfrf count is the edge's to add). */
      etag: string;
    }
  | { status: 'not-yet' }
  | { status: 'not-found'; reason: string };

/** Result of a DASH/HLS segment lookup by representation id and output time. */
export type SegmentLookup =
  | {
      status: 'ok';
      found: Extract<FragmentLookup, { status: 'ok' }>;
      /** Added to the stored decode times for `tfdt` (minus the anchor's base). */
      decodeTimeOffset: bigint;
    }
  | { status: 'not-yet' }
  /** Before the oldest fragment the track still has (DASH answers 410). */
  | { status: 'expired'; reason: string }
  | { status: 'not-found'; reason: string };

/** A fragment packaged for a client: its header, then the stored sample bytes (a view or a stream). */
export interface PackagedFragment extends MoofHead {
  data: StoredFragment['data'];
  dataSize: number;
  storedAt: number;
}

/** What the content needs of its point. */
export interface ContentHost {
  readonly path: string;
  readonly options: ResolvedOptions;
  settings(): PointSettings;
  /** The stream can still deliver newer fragments (the point is Started). */
  live(): boolean;
  emit<K extends 'fragmentTrimmed' | 'anchor'>(name: K, payload: PointEvents[K][0]): void;
  failed(source: FailureSource, error: unknown): void;
  /** The origin's byte budget, shared by its points. */
  readonly budget: ByteBudget;
}

/** What a point holds in memory, in bytes, by kind (see {@link PointContent.memory}). */
export interface PointMemory {
  /**
   * Stored fragments in process memory: the sample bytes a memory store holds (or a disk store's write
   * queue), and {@link FRAGMENT_COST} for each fragment of the timelines.
   */
  stored: number;
  /** Of the stored fragments, the sample bytes of those held back (not listed yet). */
  held: number;
  /** What the store keeps outside process memory (a disk store's files). */
  disk: number;
  /** Packaged fragment headers and the rendered manifest. */
  cached: number;
  /** Boxes of ingest connections received in part. */
  partial: number;
  /** What the point counts in the origin's byte budget: stored + cached + partial. */
  total: number;
}

/** Manifests built (one per change of the timeline that a request saw), and the time it took. */
export interface ManifestBuilds {
  builds: number;
  /** Seconds spent building them, all together. */
  seconds: number;
}

/**
 * Memory a fragment takes besides its bytes, whatever the store: its timeline and store entries and the
 * views of its samples (~0.9 KB measured on Node 22). Counted so that a stream of tiny fragments
 * cannot hold far more than the budgets say.
 */
export const FRAGMENT_COST = 1024;

const ROOT_TIMESCALE = 10_000_000;
/** Integers up to here are exact as doubles. */
const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);
/** Bytes of packaged fragment headers kept per point. */
const PACKAGE_CACHE_BYTES = 4 * 2 ** 20;
/**
 * Fragments a track keeps at most, whatever the DVR window: 24 h of 2 s fragments. With fragments of at
 * least 100 ms (the ingest's minimum) a track's manifest entries stay below ~1 MB.
 */
const MAX_FRAGMENTS = 43_200;
/** Requests that may wait for a track's next fragment at once, per point (each holds a connection open). */
const MAX_WAITING = 1024;
/** A wait for the next fragment ends this many fragment durations after the newest one arrived. */
const WAIT_FRAGMENTS = 3;
/** Waiting requests answered per turn of the event loop when their fragment's successor arrives. */
const WAKE_BATCH = 64;

/** A packaged header with the stored fragment's sample bytes. */
function packaged(head: MoofHead, f: StoredFragment): PackagedFragment {
  return { head: head.head, moofSize: head.moofSize, data: f.data, dataSize: f.dataSize, storedAt: f.storedAt };
}

/**
 * The sample a sparse fragment's listing carries, if any: a `manifestOutput` track's (`<f>`), and an
 * SCTE-35 message whatever `manifestOutput` says (the MPD's EventStream and the HLS date ranges carry
 * it). The copy fits in the {@link FRAGMENT_COST} the fragment is counted at.
 */
function listedPayload(track: Track, fragment: MediaFragment): Buffer | undefined {
  const listed = track.info.manifestOutput || track.info.scheme === SCTE35_SCHEME;
  return listed && fragment.dataSize <= MANIFEST_OUTPUT_MAX ? Buffer.from(fragment.data) : undefined;
}

/** A packaged header with the sample bytes packaging rewrote. */
function rewritten(head: MoofHead, body: Buffer, storedAt: number): PackagedFragment {
  return { head: head.head, moofSize: head.moofSize, data: body, dataSize: body.length, storedAt };
}

/** The sample bytes of a stored fragment, read whole from a store's stream (at most `size` bytes). */
function readAll(data: StoredFragment['data'], size: number): Promise<Buffer> {
  if (Buffer.isBuffer(data)) return Promise.resolve(data);
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    let length = 0;
    data.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > size) return void data.destroy(new RangeError(`the store gave more than the fragment's ${size} bytes`));
      chunks.push(chunk);
    });
    data.once('error', fail);
    data.once('end', () => ok(Buffer.concat(chunks, length)));
  });
}

/**
 * The tracks, timelines, store, manifest and packaged fragments of one point's session. It counts what
 * it holds into the origin's byte budget, and sheds its oldest fragments when the budget or
 * `maxBytesPerPoint` asks.
 */
export class PointContent implements BudgetHolder {
  readonly #host: ContentHost;
  readonly tracks = new TrackRegistry();
  #store: FragmentStore;
  /** Incremented with every new store: what an older one reports (evictions, failed puts) no longer touches the timelines. */
  #generation = 0;
  readonly #packaged = new PackageCache<FragmentTime>(PACKAGE_CACHE_BYTES);
  /** The shift of the latest encoder restart this session, for the other streams of the same encoder. */
  #restart: TimeShift | undefined;
  #changedAt: number;
  #manifest: RenderedManifest | undefined;
  /** Requests waiting for each track's next fragment (see {@link awaitSuccessor}). */
  readonly #waiters = new Map<Track, Set<() => void>>();
  #waiting = 0;
  /** Bytes this point has reported to the budget (what {@link memory} totalled when it last did). */
  #counted = 0;
  /** Bytes of partly received boxes of the point's ingest connections. */
  #partial = 0;
  /** A shed is under way: the store's evictions it causes are reported as `bytes`. */
  #shedding = false;
  readonly #builds: ManifestBuilds = { builds: 0, seconds: 0 };
  readonly #outputs: PointOutputs;

  constructor(host: ContentHost) {
    this.#host = host;
    this.#store = this.#newStore();
    this.#changedAt = host.options.clock.now();
    this.#outputs = new PointOutputs({
      tracks: this.tracks,
      settings: () => host.settings(),
      live: () => host.live(),
      changedAt: () => this.#changedAt,
      now: () => host.options.clock.now(),
    });
    host.budget.join(this);
  }

  /** Bytes the store holds. */
  get bytes(): number {
    return this.#store.bytes;
  }

  /** What the point holds, by kind. */
  get memory(): PointMemory {
    const store = this.#store;
    let held = 0;
    for (const t of this.tracks) held += t.timeline.heldBytes;
    const stored = this.#stored();
    const cached = this.#cached();
    const disk = store.memoryBytes === undefined ? 0 : store.bytes - store.memoryBytes;
    return { stored, held, disk, cached, partial: this.#partial, total: stored + cached + this.#partial };
  }

  /** Manifests built so far, and the time they took. */
  get manifestBuilds(): Readonly<ManifestBuilds> {
    return this.#builds;
  }

  /** Stored bytes that letting the oldest fragments go would free ({@link BudgetHolder}). */
  get sheddable(): number {
    const store = this.#store;
    return (store.memoryBytes === undefined ? store.bytes : 0) + FRAGMENT_COST * this.#fragmentCount();
  }

  /**
   * Lets the oldest fragments go, across tracks by start time, until `bytes` of {@link sheddable} are
   * freed or none is left; each is trimmed with reason `bytes` ({@link BudgetHolder}).
   */
  shed(bytes: number): void {
    const target = this.sheddable - bytes;
    let shed = false;
    while (this.sheddable > target) {
      let victim: { track: Track; fragment: FragmentTime } | undefined;
      for (const track of this.tracks) {
        const f = track.timeline.oldest();
        if (!f) continue;
        // Compared in seconds: f.time / its timescale against the victim's, without rounding.
        if (!victim || f.time * BigInt(victim.track.info.timescale) < victim.fragment.time * BigInt(track.info.timescale)) {
          victim = { track, fragment: f };
        }
      }
      if (!victim) break;
      const { track, fragment } = victim;
      for (const f of track.timeline.removeThrough(fragment.time)) this.#packaged.delete(f);
      this.#shedding = true;
      try {
        this.#storeCall(() => this.#store.trim(track.key, fragment.time + fragment.duration));
      } finally {
        this.#shedding = false;
      }
      shed = true;
    }
    if (shed) this.touch();
    this.#report();
  }

  /**
   * Counts a change of the bytes that ingest connections of this point hold in partly received boxes.
   * @returns false, counting nothing, for a growth the origin's byte budget cannot hold even after the
   *   points shed every fragment they can (then nothing is shed either)
   */
  holdPartial(delta: number): boolean {
    if (delta > 0 && !this.#host.budget.fits(delta)) return false;
    this.#partial += delta;
    this.#report();
    return true;
  }

  /** Fragments in the timelines (each costs {@link FRAGMENT_COST}); runs per fragment, so no iterator. */
  #fragmentCount(): number {
    let n = 0;
    for (const g of this.tracks.groups) for (const t of g.tracks) n += t.timeline.size;
    return n;
  }

  /** Stored fragments in memory, with their bookkeeping. */
  #stored(): number {
    const store = this.#store;
    return (store.memoryBytes ?? store.bytes) + FRAGMENT_COST * this.#fragmentCount();
  }

  #cached(): number {
    return this.#packaged.bytes + (this.#manifest?.body.length ?? 0) + this.#outputs.bytes;
  }

  /**
   * Reports to the budget what the point holds now. May run inside another report (the budget asks
   * this point to shed while it takes another's growth): `#counted` is updated before the budget is
   * told, so the nested report only adds its own difference.
   * @returns whether the origin is within its budget
   */
  #report(stored = this.#stored()): boolean {
    const total = stored + this.#cached() + this.#partial;
    const delta = total - this.#counted;
    this.#counted = total;
    const budget = this.#host.budget;
    return delta === 0 ? budget.used <= budget.max : budget.change(delta);
  }

  /**
   * The point's own limit: its stored fragments, with their bookkeeping, within `maxBytesPerPoint`;
   * then what it holds is reported.
   */
  #fitAndReport(): void {
    const stored = this.#stored();
    const over = stored - this.#host.options.maxBytesPerPoint;
    if (over > 0) this.shed(over); // reports
    else this.#report(stored);
  }

  /**
   * Stores a new fragment of `track` and publishes what its lookahead now allows. A sparse fragment is
   * published at once (nothing follows it for a tfrf to announce); listings show it once its parent's
   * edge reaches it ({@link listGroups}), and the parent's window trims it.
   * @returns false when the store refused or failed it at once
   */
  add(track: Track, fragment: MediaFragment): boolean {
    const sparse = track.info.parent !== undefined;
    track.timeline.add(fragment, fragment.byteLength, fragmentTag(fragment), sparse ? listedPayload(track, fragment) : undefined);
    // The session's anchor comes with its media.
    if (!sparse && this.#outputs.arrived(track, fragment.time, fragment.duration, fragment.samples.count)) {
      this.#host.emit('anchor', { point: this.#host.path, availabilityStart: this.#outputs.anchor!.availabilityStart });
    }
    track.stats.arrived(this.#host.options.clock.now(), fragment.dataSize);
    if (!this.#put(track, fragment)) {
      this.#report();
      return false;
    }
    const published = sparse ? track.timeline.publishAll() : track.timeline.publishReady(this.#host.settings().lookaheadChunks);
    if (published.length > 0) this.#publish(track, published);
    // A bitrate that has published nothing yet caps its StreamIndex's listed edge at its newest fragment.
    else if (track.timeline.newestPublished() === undefined) this.touch();
    this.#fitAndReport();
    this.#wake(track);
    return true;
  }

  /** Publishes the held-back tail of `track` (nothing more will follow it). */
  publishAll(track: Track): void {
    this.#publish(track, track.timeline.publishAll());
    this.#report();
    this.#wake(track);
  }

  /**
   * A request found the newest fragment of a live track, whose tfrf would be empty: a player that
   * follows tfrf (VLC) would have nowhere to go. The promise settles once the track has a fragment
   * after it, the track ends or is dropped, or the wait runs out ({@link WAIT_FRAGMENTS} durations after
   * the fragment arrived, at most `edgeWait`).
   * Then {@link again} tells what the request gets.
   * @returns `undefined` when there is nothing to wait for, or too many requests wait already
   */
  awaitSuccessor(found: Extract<FragmentLookup, { status: 'ok' }>): Promise<void> | undefined {
    const max = this.#host.options.edgeWait;
    // The next sparse fragment may be hours away: its newest one is answered at once, with an empty tfrf.
    if (!this.#host.live() || found.tfrf !== 0 || found.complete || max === 0 || found.track.parent !== undefined || this.#waiting >= MAX_WAITING) return undefined;
    const track = this.tracks.get(found.key);
    if (!track) return undefined;
    const duration = (Number(found.fragment.duration) * 1000) / track.info.timescale;
    const ms = Math.min(max, track.stats.lastArrival + WAIT_FRAGMENTS * duration - this.#host.options.clock.now());
    if (!(ms > 0)) return undefined;
    return new Promise<void>((resolve) => {
      let waiters = this.#waiters.get(track);
      if (!waiters) this.#waiters.set(track, (waiters = new Set()));
      const set = waiters;
      let settled = false;
      // Called by the timer or by a wake, whichever comes first; a wake may run a batch later.
      const done = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(track) === set) this.#waiters.delete(track);
        this.#waiting--;
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      this.#waiting++;
    });
  }

  /** A fragment found before, as it stands now (not counted as another request). */
  again(found: Extract<FragmentLookup, { status: 'ok' }>): FragmentLookup {
    const track = this.tracks.get(found.key);
    // Still the point's entry for that start (not trimmed, not a new session's)?
    if (track && track.timeline.find(found.time) === found.fragment) return this.#found(track, found.fragment);
    return { status: 'not-found', reason: `no fragment of ${found.track.name} at ${found.time} (it left the window)` };
  }

  /**
   * Settles every wait for `track`'s next fragment, {@link WAKE_BATCH} per turn of the event loop: a
   * thousand held requests answered in one turn stalled ingest and every other request for ~100 ms.
   */
  #wake(track: Track): void {
    const waiters = this.#waiters.get(track);
    if (!waiters) return;
    this.#waiters.delete(track);
    const all = [...waiters];
    const batch = (from: number): void => {
      const end = Math.min(from + WAKE_BATCH, all.length);
      for (let i = from; i < end; i++) all[i]!();
      if (end < all.length) setImmediate(batch, end);
    };
    batch(0);
  }

  /**
   * The shift that puts a restarted encoder's first fragment of `track` on the point's timeline (see
   * `restart.ts`); remembered for the other streams of the same restart.
   */
  restartShift(track: Track, time: bigint, duration: bigint): { shift: TimeShift; reused: boolean } {
    const view = (t: Track) => ({ timeline: t.timeline, timescale: t.info.timescale, lastArrival: t.stats.lastArrival });
    const now = this.#host.options.clock.now();
    // Sparse tracks do not say where the media ends: a marker may last a long break, or come early.
    const media = [...this.tracks].filter((t) => t.info.parent === undefined);
    const result = restartShift(media.map(view), view(track), time, duration, now, this.#restart);
    this.#restart = result.shift;
    return result;
  }

  /**
   * The shift for a sparse event at `time` of `track`: the restart shift the media took, when the event
   * is behind its parent's resend window and the shift puts it back among the parent's fragments (a
   * restarted encoder's sparse stream carries the same unshifted times as its media).
   */
  sparseShift(track: Track, time: bigint): TimeShift | undefined {
    const parent = parentOf(track.group, this.tracks.groups);
    const shift = this.#restart;
    if (!parent || !shift) return undefined;
    let floor: bigint | undefined;
    let newest: bigint | undefined;
    for (const t of parent.tracks) {
      const f = resendFloor(t.timeline);
      if (f !== undefined && (floor === undefined || f > floor)) floor = f;
      if (t.timeline.newest !== undefined && (newest === undefined || t.timeline.newest > newest)) newest = t.timeline.newest;
    }
    if (floor === undefined || newest === undefined) return undefined;
    const scale = track.info.timescale;
    const from = rescale(floor, parent.timescale, scale);
    const shifted = time + shiftIn(shift, scale);
    const lead = rescale(newest, parent.timescale, scale) + SPARSE_LEAD_SECONDS * BigInt(scale);
    return time < from && shifted >= from && shifted <= lead ? shift : undefined;
  }

  /** The manifest and its ETag change (a fragment, a stream or a setting). */
  touch(): void {
    this.#changedAt = this.#host.options.clock.now();
    this.#manifest = undefined;
    this.#outputs.invalidate();
  }

  /** Drops everything: a new session, with a new store. */
  clear(): void {
    const old = this.#store;
    this.#store = this.#newStore();
    this.#storeCall(() => old.clear());
    this.#packaged.clear();
    this.#manifest = undefined;
    this.#outputs.clear();
    for (const track of [...this.#waiters.keys()]) this.#wake(track);
    this.tracks.clear();
    this.#restart = undefined;
    this.#report();
  }

  /** The point is gone: everything is dropped and it leaves the budget. */
  close(): void {
    this.clear();
    this.#host.budget.leave(this);
  }

  /** What the manifest lists now. */
  snapshot(): ManifestSnapshot {
    const s = this.#host.settings();
    const groups = this.tracks.groups;
    const listings = listGroups(groups, s.lookaheadChunks, s.manifestWindowLength);
    const streams: StreamSnapshot[] = groups.map((g, i) => ({
      type: g.type,
      name: g.name,
      subtype: g.subtype,
      timescale: g.timescale,
      language: g.language,
      parent: g.parent,
      manifestOutput: g.manifestOutput,
      qualityLevels: g.tracks.map((t) => t.info),
      fragments: listings[i]!,
    }));
    return {
      isLive: true,
      timeScale: ROOT_TIMESCALE,
      duration: BigInt(s.estimatedTime) * BigInt(ROOT_TIMESCALE),
      lookahead: s.lookaheadChunks,
      dvrWindowLength: BigInt(s.manifestWindowLength) * BigInt(ROOT_TIMESCALE),
      streams,
    };
  }

  /** The session's DASH/HLS anchor, once its first fragment arrived. */
  get anchor(): Anchor | undefined {
    return this.#outputs.anchor;
  }

  /** An anchor an earlier process saved, for a session whose first fragment fits it. */
  restoreAnchor(anchor: Anchor): void {
    this.#outputs.restore(anchor);
  }

  /** The DASH MPD, rendered once per change of the timeline. */
  mpd(): RenderedOutput {
    return this.#reported(this.#outputs.mpd());
  }

  /** The HLS master playlist, rendered once per change of the timeline. */
  hlsMaster(): RenderedOutput {
    return this.#reported(this.#outputs.master());
  }

  /** The HLS media playlist of representation `id`; `undefined` for an unknown one. */
  hlsMedia(id: string): RenderedOutput | undefined {
    const out = this.#outputs.media(id);
    return out && this.#reported(out);
  }

  /** A rendering just made (or cached) counts in the budget. */
  #reported<T>(out: T): T {
    this.#report();
    return out;
  }

  /** The header (description and init segment) of representation `id`. */
  initSegment(id: string): TrackHeader | undefined {
    return this.#outputs.track(id)?.header;
  }

  /**
   * The DASH/HLS segment of representation `id` that starts at output time `time` (the stored time
   * minus the anchor's base).
   */
  segment(id: string, time: bigint): SegmentLookup {
    const track = this.#outputs.track(id);
    if (!track) return { status: 'not-found', reason: `no representation ${id}` };
    const offset = this.#outputs.offset(track);
    const { name, bitrate, customAttributes } = track.info;
    const found = this.lookup(name, bitrate, customAttributes, time + offset);
    if (found.status === 'ok') return { status: 'ok', found, decodeTimeOffset: -offset };
    if (found.status === 'not-yet') return found;
    const oldest = track.timeline.oldest();
    if (oldest && time + offset < oldest.time) return { status: 'expired', reason: `segment ${time} of ${id} left the window` };
    return { status: 'not-found', reason: `no segment of ${id} at ${time}` };
  }

  /** The client manifest, rendered once per change of the timeline. */
  manifest(): RenderedManifest {
    if (this.#manifest) return this.#manifest;
    const started = process.hrtime.bigint();
    const snapshot = this.snapshot();
    const formatter = this.#host.options.manifest;
    let shortest: number | undefined;
    for (const st of snapshot.streams) {
      const last = st.fragments[st.fragments.length - 1];
      if (!last || st.parent !== undefined) continue;
      const seconds = Number(last.duration) / st.timescale;
      if (shortest === undefined || seconds < shortest) shortest = seconds;
    }
    const body = Buffer.from(formatter.render(snapshot), 'utf8');
    this.#manifest = {
      body,
      contentType: formatter.contentType,
      etag: `"m${contentTag(body)}"`,
      lastModified: this.#changedAt,
      maxAge: shortest === undefined ? 0 : liveMaxAge(shortest),
    };
    this.#builds.builds++;
    this.#builds.seconds += Number(process.hrtime.bigint() - started) / 1e9;
    const manifest = this.#manifest;
    this.#report();
    return manifest;
  }

  /**
   * Finds a fragment for `QualityLevels(bitrate[,attrs])/Fragments(name=time)`. Every fragment the point
   * has is served, listed or not: a tfrf may announce the newest ones before the manifest lists them.
   */
  lookup(name: string, bitrate: number, attributes: ReadonlyArray<readonly [string, string]>, time: bigint): FragmentLookup {
    const track = this.tracks.find(name, bitrate, attributes);
    if ('reason' in track) return { status: 'not-found', reason: track.reason };
    track.stats.requests++;
    const timeline = track.timeline;
    // Players that hold times in doubles (dash.js) ask for a start above 2^53 by its rounding.
    const hit = timeline.find(time) ?? (time > MAX_EXACT ? timeline.findRounded(time) : undefined);
    if (hit) return this.#found(track, hit);
    const newest = timeline.newest;
    if (this.#host.live() && (newest === undefined || time > newest)) {
      track.stats.notYet++;
      return { status: 'not-yet' };
    }
    track.stats.notFound++;
    return { status: 'not-found', reason: `no fragment of ${name} at ${time} (outside the window or not a fragment start)` };
  }

  /** What a client gets for `hit`, a fragment of `track`: its tfrf count now, and whether that is final. */
  #found(track: Track, hit: FragmentTime): Extract<FragmentLookup, { status: 'ok' }> {
    const lookahead = this.#host.settings().lookaheadChunks;
    // MS-SSTR 2.2.4.5 has sparse fragments without tfrf, but dash.js's MSS module refuses any live
    // fragment without one (MSS_NO_TFRF): they announce the sparse successors the point has, maybe none.
    const tfrf = lookahead > 0 ? track.timeline.successorCount(hit, lookahead) : -1;
    // Published with fewer than L successors means published at the end; only once the point stopped
    // can nothing follow it any more (a stream that ended may come back while others keep it going).
    const complete = tfrf === lookahead || tfrf < 0 || (!this.#host.live() && track.timeline.isPublished(hit));
    return { status: 'ok', track: track.info, key: track.key, time: hit.time, fragment: hit, tfrf, complete, etag: `"f${hit.time}.${track.timeline.tagOf(hit)}"` };
  }

  /** The Smooth fragment response for a found fragment: tfxd, and the tfrf the lookup counted. */
  smoothFragment(found: Extract<FragmentLookup, { status: 'ok' }>): Awaitable<PackagedFragment | undefined> {
    const track = this.tracks.get(found.key);
    if (!track) return undefined;
    const got = this.#get(track, found.time);
    // This runs for every fragment request: no closure and no Promise when the store answers at once.
    if (isThenable(got)) return got.then((f) => f && this.#smooth(track, found.fragment, found.tfrf, f));
    return got && this.#smooth(track, found.fragment, found.tfrf, got);
  }

  /** Packages with `tfrf` entries (the variant; −1: no tfrf), so the body matches the lookup's ETag. */
  #smooth(track: Track, entry: FragmentTime, tfrf: number, f: StoredFragment): PackagedFragment {
    let head = this.#packaged.get(entry, tfrf);
    if (!head) {
      head = smoothFragment(f, tfrf >= 0 ? track.timeline.successors(entry, tfrf) : undefined);
      this.#packaged.set(entry, tfrf, head);
      this.#report();
    }
    return packaged(head, f);
  }

  /** The CMAF media segment of a found fragment, with the track_ID of its track's init segment. */
  cmafSegment(
    found: Extract<FragmentLookup, { status: 'ok' }>,
    options: { decodeTimeOffset?: bigint; sequenceNumber?: number },
  ): Awaitable<PackagedFragment | undefined> {
    const track = this.tracks.get(found.key);
    if (!track) return undefined;
    const { decodeTimeOffset = 0n, sequenceNumber } = options;
    const variant = `cmaf:${decodeTimeOffset}:${sequenceNumber ?? ''}`;
    const cached = this.#packaged.get(found.fragment, variant);
    // A rewritten segment is whole in the cache: the store is not read again.
    if (cached?.body) return rewritten(cached, cached.body, cached.storedAt ?? 0);
    const ttml = cached === undefined && isTtml(track.info);
    const pack = (f: StoredFragment | undefined): Awaitable<PackagedFragment | undefined> => {
      if (!f) return undefined;
      if (ttml) {
        const data = f.data;
        if (Buffer.isBuffer(data)) return this.#ttml(track, found.fragment, variant, f, data, options);
        return readAll(data, f.dataSize).then((bytes) => this.#ttml(track, found.fragment, variant, f, bytes, options));
      }
      let head = this.#packaged.get(found.fragment, variant);
      if (!head) {
        head = cmafSegment(f, { trackId: CMAF_TRACK_ID, decodeTimeOffset, sequenceNumber });
        this.#packaged.set(found.fragment, variant, head);
        this.#report();
      }
      return packaged(head, f);
    };
    const got = this.#get(track, found.time);
    return isThenable(got) ? got.then(pack) : pack(got);
  }

  /**
   * A TTML fragment for DASH and HLS: its documents' times moved from their sample's start onto the
   * output's track timeline (`package/ttml.ts`), packaged once per variant and kept with the bytes it
   * made (counted in the package cache's budget); one whose documents need no change is packaged as
   * any other fragment.
   */
  #ttml(
    track: Track,
    entry: FragmentTime,
    variant: string,
    f: StoredFragment,
    data: Buffer,
    options: { decodeTimeOffset?: bigint; sequenceNumber?: number },
  ): PackagedFragment {
    const settings = { trackId: CMAF_TRACK_ID, decodeTimeOffset: options.decodeTimeOffset ?? 0n, sequenceNumber: options.sequenceNumber };
    const segment = ttmlSegment(f, data, track.info.timescale, settings);
    const head: PackagedHead = segment
      ? { head: segment.head, moofSize: segment.moofSize, body: segment.body, storedAt: f.storedAt }
      : cmafSegment(f, settings);
    this.#packaged.set(entry, variant, head);
    this.#report();
    return segment ? rewritten(segment, segment.body, f.storedAt) : { ...packaged(head, f), data };
  }

  /**
   * Reads a fragment from the store; a synchronous store gives a synchronous answer. A failure is
   * reported and becomes ERR_STORE.
   */
  #get(track: Track, time: bigint): Awaitable<StoredFragment | undefined> {
    let got: Awaitable<StoredFragment | undefined>;
    try {
      got = this.#store.get(track.key, time);
    } catch (err) {
      return this.#storeReadFailed(err);
    }
    return isThenable(got) ? Promise.resolve(got).then(undefined, (err: unknown) => this.#storeReadFailed(err)) : got;
  }

  #storeReadFailed(err: unknown): never {
    this.#host.failed('store', err);
    throw new SmoothError('ERR_STORE', 'the fragment store failed to read the fragment');
  }

  /** Hands a fragment to the store. @returns false when the store refused or failed it at once */
  #put(track: Track, fragment: MediaFragment): boolean {
    const generation = this.#generation;
    let result: Awaitable<boolean>;
    try {
      result = this.#store.put(track.key, fragment);
    } catch (err) {
      this.#host.failed('store', err);
      this.#lost(track, fragment.time);
      return false;
    }
    if (isThenable(result)) {
      // The write queue it waited in is now smaller (or the fragment is gone): reported once settled.
      result.then(
        (kept) => {
          if (!kept && generation === this.#generation) this.#lost(track, fragment.time);
          this.#report();
        },
        (err: unknown) => {
          this.#host.failed('store', err);
          if (generation === this.#generation) this.#lost(track, fragment.time);
          this.#report();
        },
      );
      return true;
    }
    if (!result) this.#lost(track, fragment.time);
    return result;
  }

  /** A fragment the timeline has is not in the store: it is skipped from now on. */
  #lost(track: Track, time: bigint): void {
    if (!track.timeline.drop(time)) return;
    // Headers already built may announce it in their tfrf.
    this.#packaged.clear();
    this.touch();
    this.#host.emit('fragmentTrimmed', { point: this.#host.path, track: track.key, time, reason: 'error' });
  }

  /** Newly published fragments of `track`: the window moves and the manifest changes. */
  #publish(track: Track, published: FragmentTime[]): void {
    if (published.length === 0) return;
    const group = track.group;
    // A sparse StreamIndex goes with its parent's window (trimmed below when the parent's moves).
    const bound = group.parent === undefined ? trimBound(group.tracks, this.#host.settings().manifestWindowLength, group.timescale) : undefined;
    if (bound !== undefined) {
      for (const t of group.tracks) this.#trim(t, bound);
      for (const child of this.tracks.groups) {
        if (child.parent === undefined || parentOf(child, this.tracks.groups) !== group) continue;
        for (const t of child.tracks) this.#trim(t, rescale(bound, group.timescale, child.timescale));
      }
    }
    // However long the window, a track lists at most MAX_FRAGMENTS: the manifest stays small and cheap
    // to build even when an encoder sends tiny fragments.
    const excess = track.timeline.size - MAX_FRAGMENTS;
    if (excess > 0) this.#trim(track, track.timeline.endOfOldest(excess)!);
    this.touch();
  }

  /** Drops the fragments of `track` that end at or before `end` from the timeline, the store and the package cache. */
  #trim(track: Track, end: bigint): void {
    for (const f of track.timeline.trim(end)) this.#packaged.delete(f);
    this.#storeCall(() => this.#store.trim(track.key, end));
  }

  #newStore(): FragmentStore {
    const generation = ++this.#generation;
    return this.#host.options.store({
      point: this.#host.path,
      maxBytes: this.#host.options.maxBytesPerPoint,
      onEvict: (key, f, reason) => this.#evicted(generation, key, f, reason),
    });
  }

  /** The store let a fragment go: the timeline follows, and so do the manifest and its ETag. */
  #evicted(generation: number, key: string, f: FragmentTime, evictReason: EvictReason): void {
    const reason = this.#shedding && evictReason === 'window' ? 'bytes' : evictReason;
    if (generation === this.#generation) {
      const timeline = this.tracks.get(key)?.timeline;
      if (reason === 'error') {
        // Not at the head: headers already built may announce it in their tfrf.
        if (timeline?.drop(f.time)) this.#packaged.clear();
      } else if (timeline) {
        for (const entry of timeline.removeThrough(f.time)) this.#packaged.delete(entry);
      }
    }
    this.touch();
    this.#host.emit('fragmentTrimmed', { point: this.#host.path, track: key, time: f.time, reason });
  }

  /** Runs a store call whose result only matters if it fails. */
  #storeCall(call: () => Awaitable<unknown>): void {
    try {
      const r = call();
      if (isThenable(r)) r.then(undefined, (err: unknown) => this.#host.failed('store', err));
    } catch (err) {
      this.#host.failed('store', err);
    }
  }
}
