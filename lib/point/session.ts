/**
 * One ingest connection: it feeds the body to its ingest parser, attaches the stream's tracks to the
 * point when the header arrives, and turns each parsed fragment into a stored one: a restart's shift,
 * the clamps (negative start times, overlap after a shift), de-duplication (first copy wins), the one
 * copy of the samples. It talks to its point only through {@link SessionHost}.
 */
import { SmoothError } from '../errors';
import { commitFragment } from '../ingest/fragment';
import type { ParsedFragment } from '../ingest/fragment';
import type { IngestParser, IngestTrack } from '../ingest/types';
import type { MediaFragment } from '../media';
import { BEHIND_LIMIT, TimeShift, jumpCeiling, resendFloor, shiftIn } from './restart';
import type { Track } from './tracks';

/** A connection idle this long (and two fragment durations) is stale once its stream ended elsewhere. */
const STALE_MIN_MS = 2000;

/** The longest sparse event accepted, in seconds: a day (breaks and captions last far less). */
const MAX_SPARSE_SECONDS = 86_400n;

/** The shortest fragment accepted is 1/this of a second (100 ms). */
const MIN_FRAGMENTS_PER_SECOND = 10n;

/**
 * The identity of sessions opened without one (direct API use, and loopback encoders when no ingest
 * authorization is configured): all such sessions count as one encoder's.
 */
export const LOCAL_IDENTITY = 'local';

/** How a session ended. */
export type SessionEnd = 'eos' | 'disconnected' | 'error';

/** What a session needs from its publishing point. */
export interface SessionHost {
  /**
   * The stream's header arrived: attach its tracks and {@link IngestSession.bind} them to the session.
   * @throws SmoothError to refuse the stream (its state, a changed or inconsistent header)
   */
  attach(session: IngestSession, tracks: readonly IngestTrack[]): void;
  /** A new fragment of `track` (newer than any before, samples committed). */
  fragment(track: Track, fragment: MediaFragment): void;
  /**
   * The session's first fragment goes back beyond the resend window of `track`, and no other session
   * feeds it: the encoder restarted. The point applies its `encoderRestart` setting.
   * @returns the shift for the session's times (`continue`), or nothing (`reset`: the session is
   *   attached to fresh tracks)
   * @throws SmoothError ERR_ENCODER_RESTART to refuse the session (`refuse`)
   */
  restarted(session: IngestSession, track: Track, time: bigint, duration: bigint): TimeShift | undefined;
  /**
   * The shift of a sparse event at `time` of `track` that belongs to a restarted encoder (see
   * `PointContent.sparseShift`), or nothing.
   */
  sparseShift(track: Track, time: bigint): TimeShift | undefined;
  /** The stream's header describes tracks the point does not take (`reasons`); its other tracks go on. */
  leftOut(session: IngestSession, reasons: readonly string[]): void;
  /** A fragment was dropped: `track` already has its time or a later one. */
  dropped(session: IngestSession, track: Track, time: bigint, behind: boolean): void;
  /** The stream sent end of stream. */
  endOfStream(session: IngestSession): void;
  /** The session is over: after end of stream, a disconnect or an error (`err` is reported). */
  closed(session: IngestSession, reason: SessionEnd, err?: SmoothError): void;
  /**
   * The parser holds `delta` more bytes of boxes still arriving (negative: fewer), for the origin's
   * byte budget; the point takes them back with {@link IngestSession.releaseBuffered} when it ends the
   * session.
   * @throws SmoothError ERR_BUDGET_EXCEEDED when the budget cannot take a growth
   */
  buffered(delta: number): void;
  /** Wall-clock ms, for the stored time of fragments. */
  now(): number;
}

/** One ingest POST attached to a point. Created by `PublishingPoint.openIngest`. */
export class IngestSession {
  readonly #host: SessionHost;
  readonly #parser: IngestParser;
  readonly streamId: string;
  readonly remoteAddress: string | undefined;
  /**
   * Who the encoder authenticated as (`token:<n>`, `basic:<user>`, `allow:<entry>`, `hook`, or
   * {@link LOCAL_IDENTITY}): tracks a live session feeds take other connections only of the same identity.
   */
  readonly identity: string;
  #tracks: ReadonlyMap<number, Track> | undefined;
  #headers: readonly IngestTrack[] | undefined;
  /** The first fragment was looked at: the session is a continuation, or a restart with this shift. */
  #timed = false;
  #shift: TimeShift | undefined;
  /** The shift in each track's timescale. */
  readonly #shifts = new Map<Track, bigint>();
  /** Consecutive fragments per track dropped behind the resend window. */
  readonly #behind = new Map<Track, number>();
  /** Per track, why its newest fragment was left out as too short: refused if another fragment of it follows. */
  readonly #short = new Map<Track, string>();
  #delivered = false;
  /** Wall-clock ms of the last body bytes. */
  #lastActive: number;
  #eos = false;
  #closed = false;
  /** The point no longer counts this session as feeding its tracks. */
  #released = false;
  /** Bytes of partly received boxes reported to the point (see {@link SessionHost.buffered}). */
  #buffered = 0;
  /** Set by the transport: closes the underlying connection when the point drops this stream. */
  onKill: (() => void) | undefined;

  /** @internal use `PublishingPoint.openIngest` */
  constructor(host: SessionHost, parser: IngestParser, streamId: string, remoteAddress: string | undefined, identity = LOCAL_IDENTITY) {
    this.#host = host;
    this.#parser = parser;
    this.streamId = streamId;
    this.remoteAddress = remoteAddress;
    this.identity = identity;
    this.#lastActive = host.now();
  }

  /** Wall-clock ms at which the encoder last sent body bytes (or connected). */
  get lastActive(): number {
    return this.#lastActive;
  }

  /**
   * The connection has sent nothing for two fragment durations of its tracks (at least 2 s): if its
   * stream ended on another connection, this one was left half-open.
   * @param now - wall-clock ms
   */
  stale(now: number): boolean {
    let longest = 0;
    for (const t of this.#tracks?.values() ?? []) {
      const d = t.timeline.lastDuration;
      if (d !== undefined) longest = Math.max(longest, (Number(d) * 1000) / t.info.timescale);
    }
    return now - this.#lastActive > Math.max(STALE_MIN_MS, 2 * longest);
  }

  /** The point's tracks this session feeds, once its header was accepted. */
  get tracks(): ReadonlyMap<number, Track> | undefined {
    return this.#tracks;
  }

  /**
   * Every track the session feeds is sparse (captions, ad markers): Azure's encoders close such a POST
   * between events and reopen it, so it neither keeps the point's source alive nor ends its stream.
   */
  get sparseOnly(): boolean {
    if (!this.#tracks || this.#tracks.size === 0) return false;
    for (const t of this.#tracks.values()) if (t.info.parent === undefined) return false;
    return true;
  }

  /** The header the stream sent, once it arrived. */
  get headers(): readonly IngestTrack[] | undefined {
    return this.#headers;
  }

  /** The session stored a fragment. */
  get delivered(): boolean {
    return this.#delivered;
  }

  /** The stream sent end of stream (`mfra`). */
  get eos(): boolean {
    return this.#eos;
  }

  /** No more input is taken. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The session's header was accepted and it still feeds its tracks (not closed, no end of stream yet). */
  get feeding(): boolean {
    return this.#tracks !== undefined && !this.#released && !this.#closed;
  }

  /**
   * Feeds body bytes.
   * @throws SmoothError on bad input, a refused header, or a partly received box the origin's byte
   *   budget cannot hold; call {@link abort} then
   */
  write(chunk: Buffer): void {
    if (this.#closed) return;
    this.#lastActive = this.#host.now();
    const events = this.#parser.push(chunk);
    // What the parser holds shrinks as boxes complete (counted before their fragments are stored) and
    // grows with a box still arriving (counted after this chunk's complete fragments are in).
    const buffered = this.#parser.buffered ?? 0;
    if (buffered < this.#buffered) this.#report(buffered);
    this.#apply(events);
    if (!this.#closed && buffered > this.#buffered) this.#report(buffered);
  }

  #report(buffered: number): void {
    this.#host.buffered(buffered - this.#buffered);
    this.#buffered = buffered; // only once counted: a refused growth is not given back later
  }

  /** Takes back the partly received bytes this session reported (it is over). @returns them */
  releaseBuffered(): number {
    const held = this.#buffered;
    this.#buffered = 0;
    return held;
  }

  /** The POST body ended. Without an `mfra` this is not end of stream: the tracks wait for a reconnect. */
  finish(): void {
    if (this.#closed) return;
    this.#apply(this.#parser.end());
    if (!this.#closed) this.#host.closed(this, this.#eos ? 'eos' : 'disconnected');
  }

  /** The connection dropped or was refused; its tracks stay and wait for a reconnect. */
  abort(reason: 'disconnected' | 'error', err?: SmoothError): void {
    if (this.#closed) return;
    this.#host.closed(this, reason, err);
  }

  /** The point accepted the header: these are its tracks, by the stream's `track_ID`. */
  bind(tracks: ReadonlyMap<number, Track>): void {
    this.#tracks = tracks;
  }

  /**
   * Marks the session closed (the point calls this as it ends it).
   * @returns false when it already was
   */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /**
   * Marks the session's tracks as no longer fed by it.
   * @returns the tracks to release, or nothing when they already were (or never attached)
   */
  release(): ReadonlyMap<number, Track> | undefined {
    if (this.#released || !this.#tracks) return undefined;
    this.#released = true;
    return this.#tracks;
  }

  #apply(events: ReturnType<IngestParser['push']>): void {
    for (const e of events) {
      // A listener may have stopped the point while this chunk's events were being applied.
      if (this.#closed) return;
      if (e.type === 'header') {
        this.#headers = e.tracks;
        this.#host.attach(this, e.tracks);
        if (e.skipped && e.skipped.length > 0) this.#host.leftOut(this, e.skipped);
      }
      else if (e.type === 'fragment') this.#fragment(e.fragment);
      else {
        this.#eos = true;
        this.#host.endOfStream(this);
      }
    }
  }

  #fragment(parsed: ParsedFragment): void {
    // The parser only reports fragments of tracks its header described.
    let track = this.#tracks!.get(parsed.trackId)!;
    const sparse = track.info.parent !== undefined;
    // A restart shows in the media: a sparse track's next event may come any time after its last one.
    if (!this.#timed && !sparse) {
      this.#timed = true;
      const floor = resendFloor(track.timeline);
      if (floor !== undefined && parsed.time < floor && track.live === 1) {
        this.#shift = this.#host.restarted(this, track, parsed.time, parsed.duration);
        if (this.#closed) return;
        track = this.#tracks!.get(parsed.trackId)!; // a reset attached the session to fresh tracks
      }
    }
    if (sparse && !this.#timed) {
      // A sparse-only stream of a restarted encoder takes the shift its media took.
      this.#shift = this.#host.sparseShift(track, parsed.time);
      if (this.#shift) this.#timed = true;
    }
    let shift = 0n;
    if (this.#shift) {
      shift = this.#shifts.get(track) ?? shiftIn(this.#shift, track.info.timescale);
      this.#shifts.set(track, shift);
    }
    // Tiny fragments would make a track's timeline and manifest huge for a few bytes each. An encoder
    // that stops cuts its last fragment where the stop came (ffmpeg on SIGINT: a frame or two), so a short
    // fragment is left out, and refused only when another fragment of its track follows it.
    const short = this.#short.get(track);
    if (short !== undefined) throw new SmoothError('ERR_BAD_FRAGMENT', short);
    if (sparse && parsed.duration > MAX_SPARSE_SECONDS * BigInt(track.info.timescale)) {
      throw new SmoothError('ERR_BAD_FRAGMENT', `${track.key}: a sparse event of ${parsed.duration} ticks lasts more than a day`);
    }
    // Sparse fragments are events: an SCTE-35 splice of unknown duration has duration 0.
    if (!sparse && parsed.duration * MIN_FRAGMENTS_PER_SECOND < BigInt(track.info.timescale)) {
      this.#short.set(track, `${track.key}: fragment of ${parsed.duration} ticks, shorter than the minimum of 100 ms`);
      return;
    }
    let time = parsed.time + shift;
    let duration = parsed.duration;
    // Listed times never overlap: not below 0 (AAC priming: ffmpeg starts audio at −213333, and manifest
    // times are unsigned) and, after a shift, not before the end of the track's newest fragment. The
    // start moves, the end stays; a fragment that ends before it carries nothing playable.
    const newest = track.timeline.newest;
    // (Sparse events may overlap: a marker's break may span the next one.)
    const floor = this.#shift && !sparse && newest !== undefined ? newest + track.timeline.lastDuration! : 0n;
    if (time < floor) {
      duration -= floor - time;
      time = floor;
      if (duration <= 0n) return;
    }
    // A start far past the track's end and the wall time since would freeze the track (every later
    // fragment of the real encoder would look old): refused, never taken into the timeline.
    const ceiling = jumpCeiling(track.timeline, track.info.timescale, this.#host.now(), track.stats.lastArrival, sparse);
    if (ceiling !== undefined && time > ceiling) {
      throw new SmoothError(
        'ERR_TIME_JUMP',
        `stream ${this.streamId} jumped ahead: ${track.key} at ${time}, more than ${ceiling - track.timeline.newest!} ticks after its newest fragment (${track.timeline.newest}) and the time since`,
      );
    }
    // First copy wins: a reconnect resends its last fragments and redundant encoders overlap. Checked
    // before the samples are copied, so a duplicate costs nothing.
    if (!track.timeline.accepts(time)) {
      const behind = time < resendFloor(track.timeline)!;
      const count = behind ? (this.#behind.get(track) ?? 0) + 1 : 0;
      this.#behind.set(track, count);
      this.#host.dropped(this, track, time, behind);
      if (count >= BEHIND_LIMIT) {
        throw new SmoothError(
          'ERR_ENCODER_BEHIND',
          `stream ${this.streamId} is ${count} fragments behind another encoder feeding the same tracks and not catching up`,
        );
      }
      return;
    }
    this.#behind.delete(track);
    this.#delivered = true;
    this.#host.fragment(track, commitFragment(parsed, { time, duration }, shift, this.#host.now()));
  }
}

/**
 * Why `session` may not join what a live session of another identity feeds: its tracks, its stream id,
 * or the StreamIndexes of its tracks (a new quality level beside them). Reconnects and redundant
 * encoders present the same identity.
 * @param known - whether the point already has a track of that key
 * @returns the reason, or `undefined` when it may join
 */
export function conflictOf(
  session: IngestSession,
  headers: readonly IngestTrack[],
  sessions: Iterable<IngestSession>,
  known: (key: string) => boolean,
): string | undefined {
  const retry = 'a reconnect or redundant encoder must present the same credentials';
  for (const c of sessions) {
    if (c === session || c.identity === session.identity || !c.feeding) continue;
    if (c.streamId === session.streamId) return `stream ${session.streamId} is live from an encoder with other credentials; ${retry}`;
    const fed = [...c.tracks!.values()];
    for (const h of headers) {
      const same = fed.find((t) => t.key === h.key);
      if (same) return `track ${same.key} is fed live by stream ${c.streamId} of an encoder with other credentials; ${retry}`;
      const sibling = fed.find((t) => t.info.type === h.info.type && t.info.name === h.info.name);
      if (sibling && !known(h.key)) {
        return `track ${h.key} would add a quality level to ${h.info.type} "${h.info.name}", fed live by stream ${c.streamId} of an encoder with other credentials`;
      }
    }
  }
  return undefined;
}
