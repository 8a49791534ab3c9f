/**
 * A publishing point: the framework-free heart of the origin. It takes ingest connections, holds
 * fragments back until their lookahead exists, publishes them to the store, keeps the state, and
 * answers manifest and fragment lookups. All of a point's state lives here.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import createDebug from 'debug';
import type { PointSettings } from './definition';
import { SmoothError } from './errors';
import type { ParsedFragment } from './ingest/fragment';
import type { IngestTrack } from './ingest/header';
import type { IngestParser } from './ingest/parser';
import type { ManifestSnapshot, StreamSnapshot } from './manifest/types';
import { FragmentTime, TrackInfo, TrackType, trackKey } from './model';
import { writeFragment } from './mp4/writer';
import type { ResolvedOptions } from './options';
import type { FragmentStore, StoredFragment } from './store/types';

const debug = createDebug('live-smooth:point');

/**
 * Publishing point states (protocol doc §5.3). Stopping and ShuttingDown are transient: the point passes
 * through them (and reports them) on its way to Stopped and Idle.
 */
export type PointState = 'Idle' | 'Starting' | 'Started' | 'Stopping' | 'Stopped' | 'ShuttingDown' | 'Error';

/** Commands of the management API. */
export type PointCommand = 'start' | 'stop' | 'shutdown';

/** Statistics of one track (management API). */
export interface TrackStats {
  key: string;
  info: TrackInfo;
  /** Measured arrival rate of this track's sample bytes, bits per second, over the last fragments; 0 without an encoder. */
  incomingBitrate: number;
  /** Newest fragment received (held back or published). */
  lastFragmentTime: bigint | undefined;
  lastFragmentDuration: bigint | undefined;
  /** Fragments and sample bytes received, including those still held back for the lookahead. */
  fragments: number;
  bytes: number;
  requests: number;
  notFound: number;
  notYetAvailable: number;
}

/** Statistics of one ingest stream (management API). */
export interface StreamStats {
  id: string;
  state: 'connected' | 'disconnected' | 'ended';
  remoteAddress: string | undefined;
  connections: number;
}

/** Events of a publishing point (and, prefixed with the point, of the origin). */
export interface PointEvents {
  state: [{ point: string; state: PointState; reason?: string }];
  streamStarted: [{ point: string; streamId: string; remoteAddress: string | undefined; reconnect: boolean }];
  streamEnded: [{ point: string; streamId: string; reason: 'eos' | 'disconnected' | 'error' }];
  fragmentAdded: [{ point: string; track: string; time: bigint; duration: bigint; bytes: number }];
  fragmentTrimmed: [{ point: string; track: string; time: bigint; reason: string }];
  inputRejected: [{ point: string; streamId: string; code: string; message: string }];
}

interface Group {
  type: TrackType;
  name: string;
  timescale: number;
  subtype: string;
  language: string | undefined;
  tracks: Track[];
}

interface Track {
  key: string;
  info: TrackInfo;
  /** Custom attributes as they appear in `QualityLevels(b,<attrs>)`, for lookups. */
  attrs: string;
  group: Group;
  /** Counters for the management API. */
  stats: { fragments: number; bytes: number; requests: number; notFound: number; notYet: number };
  /** Arrival times (ms) and sizes of the last fragments, for the incoming bitrate. */
  arrivals: Array<[number, number]>;
  lastDuration: bigint | undefined;
  /** Ingested fragments waiting until `lookaheadChunks` successors exist. */
  pending: Array<{ fragment: ParsedFragment; time: bigint; duration: bigint }>;
  /** Newest time ingested (pending or published); older or equal fragments are dropped. */
  newest: bigint | undefined;
  /** Connections currently feeding this track that have not sent EOS. */
  live: number;
}

interface Stream {
  id: string;
  connections: number;
  ended: boolean;
  remoteAddress: string | undefined;
}

/** A rendered manifest, cached until the timeline changes. */
export interface RenderedManifest {
  body: Buffer;
  contentType: string;
  etag: string;
  lastModified: number;
  /** Seconds a client or cache may keep it: at most half the shortest fragment duration. */
  maxAge: number;
}

/** Result of a fragment lookup. */
export type FragmentLookup =
  | { status: 'ok'; fragment: StoredFragment; track: TrackInfo; etag: string }
  | { status: 'not-yet' }
  | { status: 'not-found'; reason: string };

/** One ingest POST attached to a point. Created by {@link PublishingPoint.openIngest}. */
export class IngestConnection {
  readonly #point: PublishingPoint;
  readonly #parser: IngestParser;
  readonly streamId: string;
  readonly remoteAddress: string | undefined;
  /** Tracks of this connection by bitstream track_ID, once the header arrived. */
  tracks: Map<number, Track> | undefined;
  eos = false;
  closed = false;
  /** Set by the transport: closes the underlying connection when the point drops this stream. */
  onKill: (() => void) | undefined;

  /** @internal */
  constructor(point: PublishingPoint, parser: IngestParser, streamId: string, remoteAddress: string | undefined) {
    this.#point = point;
    this.#parser = parser;
    this.streamId = streamId;
    this.remoteAddress = remoteAddress;
  }

  /** Feeds body bytes. @throws SmoothError on bad input; call {@link abort} then. */
  write(chunk: Buffer): void {
    if (this.closed) return;
    this.#point._apply(this, this.#parser.push(chunk));
  }

  /** The POST body ended. Without an `mfra` this is not EOS: the tracks wait for a reconnect. */
  finish(): void {
    if (this.closed) return;
    this.#point._apply(this, this.#parser.end());
    this.#point._close(this, this.eos ? 'eos' : 'disconnected');
  }

  /** The connection dropped or was refused; its tracks stay and wait for a reconnect. */
  abort(reason: 'disconnected' | 'error', err?: SmoothError): void {
    if (this.closed) return;
    if (err) this.#point._rejected(this.streamId, err);
    this.#point._close(this, reason);
  }
}

/** One publishing point (one `.isml`). */
export class PublishingPoint extends EventEmitter<PointEvents> {
  /** Path of the `.isml` relative to the root, with `/` separators, e.g. `events/game1.isml`. */
  readonly path: string;
  #settings: PointSettings;
  /** Settings that arrived while the point was not Idle; applied when it returns to Idle. */
  #pendingSettings: PointSettings | undefined;
  #state: PointState = 'Idle';
  #error: string | undefined;
  /** The definition is malformed: the point stays in Error until the file is fixed. */
  #broken = false;
  #sourceLost: NodeJS.Timeout | undefined;
  readonly #options: ResolvedOptions;
  #store: FragmentStore;
  readonly #groups: Group[] = [];
  readonly #tracks = new Map<string, Track>();
  readonly #streams = new Map<string, Stream>();
  readonly #connections = new Set<IngestConnection>();
  /**
   * Random session tag, part of every ETag: a restarted session (or process) that reuses fragment times
   * never matches an ETag a client or cache holds from before.
   */
  #session = randomBytes(4).toString('hex');
  #version = 0;
  #changedAt = 0;
  #manifest: RenderedManifest | undefined;

  /** @internal use {@link Origin.point} */
  constructor(path: string, settings: PointSettings, options: ResolvedOptions) {
    super();
    this.path = path;
    this.#settings = settings;
    this.#options = options;
    this.#store = this.#newStore();
    this.#changedAt = options.clock.now();
  }

  /** Current state. */
  get state(): PointState {
    return this.#state;
  }

  /** Why the point is in `Error`, if it is. */
  get error(): string | undefined {
    return this.#error;
  }

  /** Current settings. */
  get settings(): Readonly<PointSettings> {
    return this.#settings;
  }

  /** Bytes of fragments held. */
  get bytes(): number {
    return this.#store.bytes;
  }

  /** Descriptions of the point's tracks, grouped as the manifest shows them. */
  get tracks(): TrackInfo[] {
    return this.#groups.flatMap((g) => g.tracks.map((t) => t.info));
  }

  /** Ingest streams of this session. */
  get streams(): StreamStats[] {
    return [...this.#streams.values()].map((s) => ({
      id: s.id,
      state: s.ended ? 'ended' : s.connections > 0 ? 'connected' : 'disconnected',
      remoteAddress: s.remoteAddress,
      connections: s.connections,
    }));
  }

  /** Per-track statistics, in manifest order. */
  get trackStats(): TrackStats[] {
    return this.#groups.flatMap((g) =>
      g.tracks.map((t) => ({
          key: t.key,
          info: t.info,
          incomingBitrate: t.live > 0 ? incomingBitrate(t) : 0,
          lastFragmentTime: t.newest,
          lastFragmentDuration: t.lastDuration,
          fragments: t.stats.fragments,
          bytes: t.stats.bytes,
          requests: t.stats.requests,
          notFound: t.stats.notFound,
          notYetAvailable: t.stats.notYet,
        })),
    );
  }

  /** Settings read from the definition while the point was busy, waiting for Idle. */
  get pendingSettings(): Readonly<PointSettings> | undefined {
    return this.#pendingSettings;
  }

  /** True while clients are served (Started, and the DVR window of a Stopping or Stopped point). */
  get serving(): boolean {
    return this.#state === 'Started' || this.#state === 'Stopping' || this.#state === 'Stopped';
  }

  /**
   * New settings from the definition. They apply at once in Idle (and end an `Error` caused by the
   * definition); otherwise they wait until the point is Idle again, as IIS only changes settings then.
   */
  configure(settings: PointSettings): void {
    if (this.#state === 'Error') {
      this.#broken = false;
      this.#shutdownNow('definition fixed');
    }
    if (this.#state === 'Idle') {
      this.#settings = settings;
      this.#pendingSettings = undefined;
      this.#touch();
    } else {
      this.#pendingSettings = settings;
    }
  }

  /**
   * Puts the point in `Error` (its definition is malformed or contradictory): encoders are disconnected
   * and clients get 500 with the reason until the definition is fixed (a shutdown drops the window but
   * keeps the Error).
   */
  fail(reason: string): void {
    this.#error = reason;
    this.#broken = true;
    this.#kill();
    this.#setState('Error', reason);
  }

  /**
   * Runs a management command.
   * - `start`: Idle → Starting (waits for encoders).
   * - `stop`: Starting/Started → Stopping → Stopped: disconnects encoders, publishes held-back fragments;
   *   the DVR window stays available.
   * - `shutdown`: Starting/Started/Stopped/Error → ShuttingDown → Idle: drops the live window (back to
   *   Error while the definition is still malformed).
   * @throws SmoothError ERR_POINT_STATE (409) when the command is not allowed in the current state
   */
  command(command: PointCommand): void {
    const state = this.#state;
    const refuse = (why: string): never => {
      throw new SmoothError('ERR_POINT_STATE', `cannot ${command} a publishing point that is ${state}: ${why}`);
    };
    if (command === 'start') {
      if (state !== 'Idle') refuse(state === 'Stopped' || state === 'Error' ? 'shut it down first' : 'it is already started');
      this.#start('start command');
    } else if (command === 'stop') {
      if (state !== 'Starting' && state !== 'Started') refuse(state === 'Stopped' ? 'it is already stopped' : 'it is not started');
      this.#stopNow('stop command');
    } else {
      if (state === 'Idle' || state === 'Stopping' || state === 'ShuttingDown') refuse('there is nothing to shut down');
      this.#shutdownNow('shutdown command');
    }
  }

  /** Restores a state remembered across a process restart: a point that was started waits for encoders again. */
  restore(state: PointState): void {
    if (this.#state === 'Idle' && (state === 'Starting' || state === 'Started')) this.#start('restored after restart');
  }

  /**
   * A client asked for the manifest or a fragment: an Idle point with `startOnFirstRequest` starts
   * (it still answers 404 until an encoder delivers, as IIS does while Starting).
   */
  clientRequest(): void {
    if (this.#state === 'Idle' && this.#settings.startOnFirstRequest) this.#start('first client request');
  }

  /**
   * Checks whether an encoder may push now, without attaching one (the empty probe POST).
   * @throws SmoothError ERR_POINT_STATE with the reason when it may not
   */
  checkIngest(): void {
    const state = this.#state;
    const refuse = (why: string): never => {
      throw new SmoothError('ERR_POINT_STATE', `publishing point is ${state}: ${why}`);
    };
    if (state === 'Error') refuse(this.#error ?? 'error');
    if (state === 'Idle' && !this.#settings.startOnFirstRequest) refuse('start it, or set startOnFirstRequest');
    if (state === 'Stopping' || state === 'ShuttingDown') refuse('try again in a moment');
    if (state === 'Stopped' && !this.#settings.restartOnEncoderReconnect) {
      refuse('shut it down first, or set restartOnEncoderReconnect');
    }
  }

  /**
   * Attaches an ingest POST. Once its header is accepted, an Idle point with `startOnFirstRequest`
   * starts, and a Stopped point with `restartOnEncoderReconnect` shuts down (dropping its window) and
   * starts a fresh session; garbage from a stray client changes nothing.
   * @throws SmoothError ERR_POINT_STATE when the point refuses encoders
   */
  openIngest(streamId: string, remoteAddress: string | undefined, parser: IngestParser): IngestConnection {
    this.checkIngest();
    const conn = new IngestConnection(this, parser, streamId, remoteAddress);
    this.#connections.add(conn);
    return conn;
  }

  /** Closes every ingest connection and releases the fragments (the point is going away). */
  close(): void {
    this.#kill();
    this.#clear();
    clearTimeout(this.#sourceLost);
    this.removeAllListeners();
  }

  #start(reason: string): void {
    this.#setState('Starting', reason);
  }

  /** Started/Starting → Stopping → Stopped: encoders go, the held-back tail is published. */
  #stopNow(reason: string): void {
    clearTimeout(this.#sourceLost);
    this.#setState('Stopping', reason);
    this.#kill();
    for (const t of this.#tracks.values()) {
      t.live = 0;
      while (t.pending.length > 0) this.#publish(t, this.#settings.lookaheadChunks);
    }
    for (const st of this.#streams.values()) st.ended = true;
    this.#setState('Stopped', reason);
    this.#touch();
  }

  /**
   * → ShuttingDown → Idle: drops the live window and applies settings that waited for Idle. A point whose
   * definition is still malformed goes back to Error instead.
   */
  #shutdownNow(reason: string, keep?: (c: IngestConnection) => boolean): void {
    clearTimeout(this.#sourceLost);
    this.#setState('ShuttingDown', reason);
    this.#kill(keep);
    this.#clear();
    if (this.#pendingSettings) {
      this.#settings = this.#pendingSettings;
      this.#pendingSettings = undefined;
    }
    this.#touch();
    if (this.#broken) {
      this.#setState('Error', this.#error);
      return;
    }
    this.#error = undefined;
    this.#setState('Idle', reason);
  }

  /**
   * Disconnects every encoder, except those that already sent end-of-stream: their POST is finishing
   * and must still get its 200.
   */
  #kill(keep?: (c: IngestConnection) => boolean): void {
    for (const c of this.#connections) {
      if (c.eos || keep?.(c)) continue;
      c.closed = true;
      this.#connections.delete(c);
      const stream = this.#streams.get(c.streamId);
      if (stream && c.tracks) stream.connections--;
      c.onKill?.();
    }
  }

  #clear(): void {
    this.#store.clear();
    this.#store = this.#newStore();
    this.#groups.length = 0;
    this.#tracks.clear();
    this.#streams.clear();
    this.#session = randomBytes(4).toString('hex');
  }

  /** @internal Applies parser events of one connection. */
  _apply(conn: IngestConnection, events: ReturnType<IngestParser['push']>): void {
    for (const e of events) {
      if (e.type === 'header') this.#attach(conn, e.tracks);
      else if (e.type === 'fragment') {
        const track = conn.tracks!.get(e.fragment.trackId)!;
        this.#ingest(track, e.fragment);
      } else {
        conn.eos = true;
        this.#endOfStream(conn);
      }
    }
  }

  /** @internal */
  _rejected(streamId: string, err: SmoothError): void {
    debug('%s: stream %s rejected: %s', this.path, streamId, err.message);
    this.emit('inputRejected', { point: this.path, streamId, code: err.code, message: err.message });
  }

  /** @internal A connection ended (EOS already applied) or dropped. */
  _close(conn: IngestConnection, reason: 'eos' | 'disconnected' | 'error'): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#connections.delete(conn);
    if (!conn.tracks) return; // never got past the header
    const stream = this.#streams.get(conn.streamId);
    if (stream) stream.connections--;
    if (!conn.eos) for (const t of conn.tracks.values()) t.live--;
    this.emit('streamEnded', { point: this.path, streamId: conn.streamId, reason });
    debug('%s: stream %s %s', this.path, conn.streamId, reason);
    this.#armSourceLost();
    this.#touch();
  }

  /**
   * Every encoder disconnected without end-of-stream: wait `sourceLostTimeout` for a reconnect (which
   * continues the timeline), then stop as IIS does when its source is lost.
   */
  #armSourceLost(): void {
    const timeout = this.#options.sourceLostTimeout;
    if (timeout === 0 || this.#connections.size > 0 || (this.#state !== 'Started' && this.#state !== 'Starting')) return;
    clearTimeout(this.#sourceLost);
    this.#sourceLost = setTimeout(() => {
      if (this.#connections.size === 0 && (this.#state === 'Started' || this.#state === 'Starting')) this.#stopNow('source lost');
    }, timeout).unref();
  }

  #attach(conn: IngestConnection, tracks: IngestTrack[]): void {
    this.checkIngest(); // the state may have changed since the POST arrived
    // Only the old session's encoders go: this one, and siblings whose headers are still on their way
    // (one POST per track), join the new session.
    if (this.#state === 'Stopped') this.#shutdownNow('encoder reconnected (restartOnEncoderReconnect)', (c) => c.tracks === undefined);
    // Validate everything before changing anything: a rejected header leaves the point untouched.
    const added = tracks.filter((t) => !this.#tracks.has(trackKey(t.info))).length;
    if (this.#tracks.size + added > MAX_TRACKS) {
      throw new SmoothError('ERR_BAD_HEADER', `a publishing point holds at most ${MAX_TRACKS} tracks`);
    }
    if (!this.#streams.has(conn.streamId) && this.#streams.size >= MAX_STREAMS) {
      throw new SmoothError('ERR_BAD_HEADER', `a publishing point takes at most ${MAX_STREAMS} stream ids per session`);
    }
    for (const t of tracks) {
      const known = this.#tracks.get(trackKey(t.info));
      if (known && !sameDescription(known.info, t.info)) {
        throw new SmoothError(
          'ERR_HEADER_CHANGED',
          `stream ${conn.streamId} describes track ${known.key} differently than before (codec, timescale or size)`,
        );
      }
      const group = this.#groups.find((g) => g.type === t.info.type && g.name === t.info.name);
      if (!known && group && group.timescale !== t.info.timescale) {
        throw new SmoothError(
          'ERR_BAD_HEADER',
          `track ${trackKey(t.info)} has timescale ${t.info.timescale}, but its StreamIndex uses ${group.timescale}`,
        );
      }
    }
    const map = new Map<number, Track>();
    for (const t of tracks) {
      const key = trackKey(t.info);
      let track = this.#tracks.get(key);
      if (!track) {
        let group = this.#groups.find((g) => g.type === t.info.type && g.name === t.info.name);
        if (!group) {
          group = {
            type: t.info.type,
            name: t.info.name,
            timescale: t.info.timescale,
            subtype: t.info.subtype,
            language: t.info.language,
            tracks: [],
          };
          this.#groups.push(group);
          this.#groups.sort((a, b) => TYPE_ORDER[a.type] - TYPE_ORDER[b.type]);
        }
        track = {
          key,
          info: t.info,
          attrs: attributesKey(t.info.customAttributes),
          group,
          stats: { fragments: 0, bytes: 0, requests: 0, notFound: 0, notYet: 0 },
          arrivals: [],
          lastDuration: undefined,
          pending: [],
          newest: undefined,
          live: 0,
        };
        group.tracks.push(track);
        group.tracks.sort((a, b) => a.info.bitrate - b.info.bitrate);
        this.#tracks.set(key, track);
      }
      track.live++;
      map.set(t.trackId, track);
    }
    conn.tracks = map;
    if (this.#state === 'Idle') this.#start(`encoder ${conn.streamId}`);
    let stream = this.#streams.get(conn.streamId);
    const reconnect = stream !== undefined;
    if (!stream) {
      stream = { id: conn.streamId, connections: 0, ended: false, remoteAddress: conn.remoteAddress };
      this.#streams.set(conn.streamId, stream);
    }
    stream.connections++;
    stream.ended = false;
    stream.remoteAddress = conn.remoteAddress;
    clearTimeout(this.#sourceLost);
    debug('%s: stream %s attached (%d tracks%s)', this.path, conn.streamId, tracks.length, reconnect ? ', reconnect' : '');
    this.emit('streamStarted', { point: this.path, streamId: conn.streamId, remoteAddress: conn.remoteAddress, reconnect });
    this.#touch();
  }

  #ingest(track: Track, fragment: ParsedFragment): void {
    let time = fragment.time;
    let duration = fragment.duration;
    if (time < 0n) {
      // AAC priming (ffmpeg starts audio at −213333): manifest times are unsigned, so the first fragment
      // is listed from 0 with its end unchanged; one that ends before 0 carries nothing playable.
      duration += time;
      time = 0n;
      if (duration <= 0n) return;
    }
    // First copy wins: a reconnect resends its last fragments and redundant encoders overlap.
    if (track.newest !== undefined && time <= track.newest) return;
    track.newest = time;
    track.lastDuration = duration;
    track.stats.fragments++;
    track.stats.bytes += fragment.dataSize;
    track.arrivals.push([this.#options.clock.now(), fragment.dataSize]);
    if (track.arrivals.length > 8) track.arrivals.shift();
    if (this.#state === 'Starting') this.#setState('Started', 'first fragment');
    track.pending.push({ fragment, time, duration });
    const lookahead = this.#settings.lookaheadChunks;
    while (track.pending.length > lookahead) this.#publish(track, lookahead);
  }

  /** Publishes the oldest held fragment of `track` with a tfrf of what follows it. */
  #publish(track: Track, lookahead: number): void {
    const { fragment, time, duration } = track.pending.shift()!;
    const next = track.pending.slice(0, lookahead).map((p) => ({ time: p.time, duration: p.duration }));
    const written = writeFragment(fragment, time, duration, lookahead > 0 ? next : undefined);
    const stored: StoredFragment = {
      time,
      duration,
      data: written.data,
      moofSize: written.moofSize,
      storedAt: this.#options.clock.now(),
    };
    if (!this.#store.put(track.key, stored)) return;
    this.emit('fragmentAdded', { point: this.path, track: track.key, time, duration, bytes: written.data.length });
    this.#trimWindow(track.group);
    this.#touch();
  }

  #trimWindow(group: Group): void {
    const window = this.#settings.manifestWindowLength;
    if (window === 0) return;
    let end: bigint | undefined;
    for (const t of group.tracks) {
      const n = this.#store.newest(t.key);
      if (n && (end === undefined || n.time + n.duration > end)) end = n.time + n.duration;
    }
    if (end === undefined) return;
    // Keep two fragments beyond the listed window: clients that read a slightly older manifest still
    // request them (ffmpeg keeps extra fragments for the same reason).
    const newest = this.#store.newest(group.tracks[0]!.key);
    const grace = 2n * (newest?.duration ?? 0n);
    const bound = end - BigInt(window) * BigInt(group.timescale) - grace;
    for (const t of group.tracks) this.#store.trim(t.key, bound);
  }

  #endOfStream(conn: IngestConnection): void {
    const stream = this.#streams.get(conn.streamId);
    for (const t of conn.tracks?.values() ?? []) {
      t.live--;
      // Nothing follows the held-back tail any more: publish it with whatever lookahead exists.
      if (t.live === 0) while (t.pending.length > 0) this.#publish(t, this.#settings.lookaheadChunks);
    }
    const others = [...this.#connections].some((c) => c !== conn && c.streamId === conn.streamId && !c.eos);
    if (stream && !others) stream.ended = true;
    if ([...this.#streams.values()].every((s) => s.ended)) this.#stopNow('end of stream');
    this.#touch();
  }

  #setState(state: PointState, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    debug('%s: %s%s', this.path, state, reason ? ` (${reason})` : '');
    this.emit('state', { point: this.path, state, reason });
  }

  #touch(): void {
    this.#version++;
    this.#changedAt = this.#options.clock.now();
    this.#manifest = undefined;
  }

  #newStore(): FragmentStore {
    return this.#options.store({
      maxBytes: this.#options.maxBytesPerPoint,
      onEvict: (track, f, reason) => {
        this.emit('fragmentTrimmed', { point: this.path, track, time: f.time, reason });
        this.#manifest = undefined;
      },
    });
  }

  /** What the manifest lists now. */
  snapshot(): ManifestSnapshot {
    const s = this.#settings;
    const streams: StreamSnapshot[] = [];
    for (const g of this.#groups) {
      streams.push({
        type: g.type,
        name: g.name,
        subtype: g.subtype,
        timescale: g.timescale,
        language: g.language,
        qualityLevels: g.tracks.map((t) => t.info),
        fragments: this.#listed(g),
      });
    }
    return {
      isLive: true,
      timeScale: ROOT_TIMESCALE,
      duration: BigInt(s.estimatedTime) * BigInt(ROOT_TIMESCALE),
      lookahead: s.lookaheadChunks,
      dvrWindowLength: BigInt(s.manifestWindowLength) * BigInt(ROOT_TIMESCALE),
      streams,
    };
  }

  /**
   * The timeline of a StreamIndex: the union of its tracks' available fragments, up to the newest time
   * that every live track has (so each listed time can be fetched at every bitrate still being fed),
   * and within the DVR window.
   */
  #listed(g: Group): FragmentTime[] {
    // Live tracks hold the edge back, except one that lags the leader by more than its hold-back plus
    // two fragments (a stalled encoder that keeps its connection open must not freeze the manifest) or
    // that has published nothing yet (a bitrate joining mid-event must not empty it).
    let lead: bigint | undefined;
    let step = 0n;
    for (const t of g.tracks) {
      if (t.live > 0 && t.newest !== undefined && (lead === undefined || t.newest > lead)) lead = t.newest;
      const n = this.#store.newest(t.key);
      if (n && n.duration > step) step = n.duration;
    }
    const allowance = BigInt(this.#settings.lookaheadChunks + 2) * step;
    let edge: bigint | undefined;
    for (const t of g.tracks) {
      const n = this.#store.newest(t.key)?.time;
      if (n === undefined || t.live === 0 || lead === undefined || lead - t.newest! > allowance) continue;
      if (edge === undefined || n < edge) edge = n;
    }
    if (edge === undefined) {
      for (const t of g.tracks) {
        const n = this.#store.newest(t.key)?.time;
        if (n !== undefined && (edge === undefined || n > edge)) edge = n;
      }
    }
    if (edge === undefined) return [];
    const all = g.tracks.length === 1 ? this.#store.timeline(g.tracks[0]!.key) : union(g.tracks.map((t) => this.#store.timeline(t.key)));
    let end = all.length;
    while (end > 0 && all[end - 1]!.time > edge) end--;
    let start = 0;
    const window = this.#settings.manifestWindowLength;
    if (window > 0 && end > 0) {
      const last = all[end - 1]!;
      const bound = last.time + last.duration - BigInt(window) * BigInt(g.timescale);
      while (start < end && all[start]!.time + all[start]!.duration <= bound) start++;
    }
    return start === 0 && end === all.length ? all : all.slice(start, end);
  }

  /** The client manifest, rendered once per change of the timeline. */
  manifest(): RenderedManifest {
    if (this.#manifest) return this.#manifest;
    const snapshot = this.snapshot();
    const formatter = this.#options.manifest;
    let shortest: number | undefined;
    for (const st of snapshot.streams) {
      const last = st.fragments[st.fragments.length - 1];
      if (!last) continue;
      const seconds = Number(last.duration) / st.timescale;
      if (shortest === undefined || seconds < shortest) shortest = seconds;
    }
    this.#manifest = {
      body: Buffer.from(formatter.render(snapshot), 'utf8'),
      contentType: formatter.contentType,
      etag: `"m${this.#session}.${this.#version}"`,
      lastModified: this.#changedAt,
      maxAge: shortest === undefined ? 0 : Math.floor(shortest / 2),
    };
    return this.#manifest;
  }

  /**
   * Finds a fragment for `QualityLevels(bitrate[,attrs])/Fragments(name=time)`.
   * 412 semantics (`not-yet`) for times past the newest available fragment while the stream can still
   * deliver them; `not-found` for unknown tracks, trimmed times and times that start no fragment.
   */
  lookup(name: string, bitrate: number, attributes: ReadonlyArray<readonly [string, string]>, time: bigint): FragmentLookup {
    const group = this.#groups.find((g) => g.name === name);
    if (!group) return { status: 'not-found', reason: `no track named ${name}` };
    const attrs = attributes.length === 0 ? '' : attributesKey(attributes);
    const track = group.tracks.find((t) => t.info.bitrate === bitrate && t.attrs === attrs);
    if (!track) return { status: 'not-found', reason: `no quality level ${bitrate} for ${name}` };
    track.stats.requests++;
    const fragment = this.#store.get(track.key, time);
    if (fragment) return { status: 'ok', fragment, track: track.info, etag: `"f${this.#session}.${time}"` };
    const newest = this.#store.newest(track.key);
    const more = this.#state === 'Started' || track.pending.length > 0;
    if (more && (newest === undefined || time > newest.time)) {
      track.stats.notYet++;
      return { status: 'not-yet' };
    }
    track.stats.notFound++;
    return { status: 'not-found', reason: `no fragment of ${name} at ${time} (outside the window or not a fragment start)` };
  }
}

const ROOT_TIMESCALE = 10_000_000;
/** Bounds on what encoders can make a point hold besides fragments. */
const MAX_TRACKS = 64;
const MAX_STREAMS = 256;

/**
 * Arrival rate of a track's sample bytes: the bytes that arrived after the first remembered fragment,
 * over the time since it arrived; with one fragment so far, its bytes over its media duration.
 */
function incomingBitrate(t: Track): number {
  const first = t.arrivals[0];
  const last = t.arrivals[t.arrivals.length - 1];
  if (!first || !last) return 0;
  if (t.arrivals.length === 1 || last[0] === first[0]) {
    const seconds = t.lastDuration ? Number(t.lastDuration) / t.info.timescale : 0;
    return seconds > 0 ? Math.round((first[1] * 8) / seconds) : 0;
  }
  const bytes = t.arrivals.slice(1).reduce((sum, [, b]) => sum + b, 0);
  return Math.round((bytes * 8000) / (last[0] - first[0]));
}

function attributesKey(attributes: ReadonlyArray<readonly [string, string]>): string {
  return attributes.map(([k, v]) => `${k}=${v}`).join(',');
}
const TYPE_ORDER: Record<TrackType, number> = { video: 0, audio: 1, text: 2 };

function sameDescription(a: TrackInfo, b: TrackInfo): boolean {
  return (
    a.fourCC === b.fourCC &&
    a.codecPrivateData === b.codecPrivateData &&
    a.timescale === b.timescale &&
    a.maxWidth === b.maxWidth &&
    a.maxHeight === b.maxHeight &&
    a.channels === b.channels &&
    a.samplingRate === b.samplingRate
  );
}

/** Merges time-ordered timelines, keeping the first entry of each start time. */
function union(lists: FragmentTime[][]): FragmentTime[] {
  // A linear k-way merge (each list is oldest first): sorting the concatenation cost a 2 h window's
  // rebuild ~1.5 ms. Ties go to the earlier list, as the stable sort did.
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
