/**
 * A publishing point (one `.isml`): the façade that wires its parts together. The lifecycle table
 * decides states (`lifecycle.ts`), ingest sessions turn connections into fragments (`session.ts`), and
 * the content (`content.ts`) keeps tracks, timelines and the store, and answers clients.
 *
 * Events are emitted synchronously, as things happen, each listener isolated (`events.ts`). A listener
 * may run commands: during a transition the transient states (Stopping, ShuttingDown) refuse them, and
 * an ingest session stops taking input once the point has closed it.
 */
import createDebug from 'debug';
import type { PointSettings } from '../definition';
import { SmoothError } from '../errors';
import type { IngestParser, IngestTrack } from '../ingest/types';
import type { MediaFragment, TrackHeader } from '../media';
import type { ManifestSnapshot } from '../manifest/types';
import type { TrackInfo } from '../model';
import type { ResolvedOptions } from '../options';
import type { Awaitable } from '../store/types';
import { FragmentLookup, ManifestBuilds, PackagedFragment, PointContent, PointMemory, RenderedManifest, SegmentLookup } from './content';
import type { Anchor } from './anchor';
import type { RenderedOutput } from './outputs';
import { FailureSource, PointEvents, PointState, SafeEmitter, SourceStatus, describeError } from './events';
import { Effect, PointCommand, PointEvent, refusedCommand, refusedEncoder, step } from './lifecycle';
import { IngestSession, LOCAL_IDENTITY, SessionEnd, SessionHost, conflictOf } from './session';
import { SharedLimits, sharedLimits } from './limits';
import { TimeShift, shiftIn } from './restart';
import { EncoderCounts, FailureCounts, ResponseCounts, StreamStats, TrackStats } from './stats';
import { Track, trackStats } from './tracks';

export type { PointState, SourceStatus } from './events';
export { contentTag, liveMaxAge } from './etag';
export type { PointCommand } from './lifecycle';
export type { FragmentLookup, ManifestBuilds, PackagedFragment, PointMemory, RenderedManifest, SegmentLookup } from './content';
export type { Anchor } from './anchor';
export type { RenderedOutput } from './outputs';

const debug = createDebug('live-smooth:point');

interface Stream {
  id: string;
  connections: number;
  ended: boolean;
  /** It carries only sparse tracks: the point's end of stream does not wait for it. */
  sparse: boolean;
  remoteAddress: string | undefined;
}

/** Stream ids one session takes (a bound on what encoders can make a point hold besides fragments). */
const MAX_STREAMS = 256;

/** One publishing point (one `.isml`). */
export class PublishingPoint extends SafeEmitter<PointEvents> {
  /** Path of the `.isml` relative to the root, with `/` separators, e.g. `events/game1.isml`. */
  readonly path: string;
  /** Responses by output and status, and encoders refused by reason, as the HTTP edge counts them (since the point was created). */
  readonly responses = new ResponseCounts();
  #settings: PointSettings;
  /** Settings that arrived while the point was not Idle; applied when it returns to Idle. */
  #pendingSettings: PointSettings | undefined;
  #state: PointState = 'Idle';
  /** {@link close} ran: the point takes no more encoders. */
  #removed = false;
  #error: string | undefined;
  #source: SourceStatus | undefined;
  /** The definition is malformed: the point stays in Error until the file is fixed. */
  #broken = false;
  #sourceLost: NodeJS.Timeout | undefined;
  readonly #options: ResolvedOptions;
  readonly #content: PointContent;
  readonly #streams = new Map<string, Stream>();
  readonly #sessions = new Set<IngestSession>();
  readonly #failures: FailureCounts = { listener: 0, store: 0 };
  readonly #encoderCounts: EncoderCounts = { restarts: 0, duplicatesDropped: 0, refused: 0 };
  /** What ingest sessions may call: nothing else of the point is theirs. */
  readonly #host: SessionHost = {
    attach: (session, tracks) => this.#attach(session, tracks),
    fragment: (track, fragment) => this.#fragment(track, fragment),
    sparseShift: (track, time) => this.#content.sparseShift(track, time),
    restarted: (session, track, time, duration) => this.#restarted(session, track, time, duration),
    dropped: (session, track, time, behind) => this.#dropped(session, track, time, behind),
    leftOut: (session, reasons) => {
      for (const reason of reasons) {
        debug('%s: stream %s: %s; its other tracks go on', this.path, session.streamId, reason);
        this.#emit('inputRejected', { point: this.path, streamId: session.streamId, code: 'ERR_UNKNOWN_CODEC', message: `${reason}; the stream's other tracks go on` });
      }
    },
    endOfStream: (session) => this.#endOfStream(session),
    closed: (session, reason, err) => this.#closed(session, reason, err),
    buffered: (delta) => this.#buffered(delta),
    now: () => this.#options.clock.now(),
  };

  readonly #limits: SharedLimits;

  /**
   * @internal use `Origin.resolve`
   * @param limits - the origin's ingest connections and byte budget, shared by its points (the point's
   *   own by default)
   */
  constructor(path: string, settings: PointSettings, options: ResolvedOptions, limits: SharedLimits = sharedLimits(options)) {
    super((event, err) => this.#failed('listener', err, event));
    this.#limits = limits;
    this.path = path;
    this.#settings = settings;
    this.#options = options;
    this.#content = new PointContent({
      path,
      options,
      settings: () => this.#settings,
      live: () => this.#state === 'Started',
      emit: (name, payload) => this.#emit(name, payload),
      failed: (source, error) => this.#failed(source, error),
      budget: limits.budget,
    });
  }

  /** Current state. */
  get state(): PointState {
    return this.#state;
  }

  /** Why the point is in `Error`, if it is. */
  get error(): string | undefined {
    return this.#error;
  }

  /** A pulled point's connection to its upstream, as last reported; `undefined` for a pushed point. */
  get source(): Readonly<SourceStatus> | undefined {
    return this.#source;
  }

  /**
   * Records how a pulled point's upstream connection stands (its puller calls this) and emits `source`
   * when it changed; `undefined` clears it (the point became a push point).
   */
  reportSource(status: SourceStatus | undefined): void {
    const old = this.#source;
    if (status && old && old.state === status.state && old.upstream === status.upstream && old.reason === status.reason) return;
    this.#source = status;
    if (!status) return;
    debug('%s: source %s %s%s', this.path, status.state, status.upstream, status.reason ? ` (${status.reason})` : '');
    this.#emit('source', { point: this.path, ...status });
  }

  /** Current settings. */
  get settings(): Readonly<PointSettings> {
    return this.#settings;
  }

  /** Bytes the store holds for this point. */
  get bytes(): number {
    return this.#content.bytes;
  }

  /** What the point holds, by kind, and what it counts in the origin's byte budget. */
  get memory(): PointMemory {
    return this.#content.memory;
  }

  /** Manifests built so far (one per change a request saw) and the time they took. */
  get manifestBuilds(): Readonly<ManifestBuilds> {
    return this.#content.manifestBuilds;
  }

  /** Descriptions of the point's tracks, grouped as the manifest shows them. */
  get tracks(): TrackInfo[] {
    return [...this.#content.tracks].map((t) => t.info);
  }

  /** The header of every track (description and init segment), in manifest order. */
  get headers(): TrackHeader[] {
    return [...this.#content.tracks].map((t) => t.header);
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
    return [...this.#content.tracks].map(trackStats);
  }

  /** Listener and store failures since the point was created (each also raised a `failure` event). */
  get failures(): Readonly<FailureCounts> {
    return { ...this.#failures };
  }

  /** Encoder restarts, dropped duplicate fragments and encoders refused for going back in time, since the point was created. */
  get encoderCounts(): Readonly<EncoderCounts> {
    return { ...this.#encoderCounts };
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
      this.#run('shutdown', 'definition fixed');
    }
    if (this.#state === 'Idle') {
      this.#settings = settings;
      this.#pendingSettings = undefined;
      this.#content.touch();
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
    const s = this.#step(command);
    if ('refuse' in s) throw new SmoothError('ERR_POINT_STATE', refusedCommand(command, this.#state, s.refuse));
    if ('effect' in s) this.#run(s.effect, `${command} command`);
  }

  /**
   * Restores a state remembered across a process restart: a point that was started waits for encoders
   * again, and its DASH/HLS anchor is kept if the encoder goes on with its times.
   */
  restore(state: PointState, anchor?: Anchor): void {
    if (this.#state === 'Idle' && (state === 'Starting' || state === 'Started')) this.#run('start', 'restored after restart');
    if (anchor) this.#content.restoreAnchor(anchor);
  }

  /** The session's DASH/HLS anchor, once its first fragment arrived. */
  get anchor(): Anchor | undefined {
    return this.#content.anchor;
  }

  /**
   * A client asked for the manifest or a fragment: an Idle point with `startOnFirstRequest` starts
   * (it still answers 404 until an encoder delivers, as IIS does while Starting).
   */
  clientRequest(): void {
    this.#on('request', 'first client request');
  }

  /**
   * Checks whether an encoder may push now, without attaching one (the empty probe POST).
   * @throws SmoothError ERR_POINT_STATE with the reason when it may not
   */
  checkIngest(): void {
    // A request that was on its way (an upload authorized asynchronously) may reach a point removed since.
    if (this.#removed) throw new SmoothError('ERR_POINT_STATE', 'the publishing point was removed');
    const s = this.#step('encoder');
    if ('refuse' in s) throw new SmoothError('ERR_POINT_STATE', refusedEncoder(this.#state, s.refuse));
  }

  /**
   * Attaches an ingest POST. Once its header is accepted, an Idle point with `startOnFirstRequest`
   * starts, and a Stopped point with `restartOnEncoderReconnect` shuts down (dropping its window) and
   * starts a fresh session; garbage from a stray client changes nothing.
   * @param identity - who the encoder authenticated as (the HTTP edge's ingest authorization): while a
   *   session feeds tracks, a header that names them, the same stream id, or a new quality level of
   *   their StreamIndexes is refused to sessions of another identity (ERR_TRACK_TAKEN, when the header
   *   arrives). Default {@link LOCAL_IDENTITY}, the same for every caller that gives none.
   * @throws SmoothError ERR_POINT_STATE when the point refuses encoders; ERR_TOO_MANY_CONNECTIONS when
   *   the point or the origin has as many ingest connections as it takes
   */
  openIngest(streamId: string, remoteAddress: string | undefined, parser: IngestParser, identity: string = LOCAL_IDENTITY): IngestSession {
    this.checkIngest();
    const perPoint = this.#options.maxIngestConnectionsPerPoint;
    if (this.#sessions.size >= perPoint) {
      throw new SmoothError('ERR_TOO_MANY_CONNECTIONS', `this publishing point takes at most ${perPoint} ingest connections at once`);
    }
    if (!this.#limits.slots.take()) {
      throw new SmoothError('ERR_TOO_MANY_CONNECTIONS', `the server takes at most ${this.#limits.slots.max} ingest connections at once`);
    }
    const session = new IngestSession(this.#host, parser, streamId, remoteAddress, identity);
    this.#sessions.add(session);
    return session;
  }

  /** Closes every ingest connection and releases the fragments (the point is going away). */
  close(): void {
    this.#removed = true;
    this.#kill();
    this.#content.close();
    this.#streams.clear();
    clearTimeout(this.#sourceLost);
    this.removeAllListeners();
  }

  // ---- what ingest sessions call (through #host) ----

  #attach(session: IngestSession, headers: readonly IngestTrack[]): void {
    this.checkIngest(); // the state may have changed since the POST arrived
    const taken = conflictOf(session, headers, this.#sessions, (key) => this.#content.tracks.get(key) !== undefined);
    if (taken) throw new SmoothError('ERR_TRACK_TAKEN', taken);
    // Only the old session's encoders go: this one, and siblings whose headers are still on their way
    // (one POST per track), join the new session.
    // Sparse POSTs close and reopen between events (Azure): one reopening is not an encoder coming back.
    const sparseOnly = headers.length > 0 && headers.every((h) => h.info.parent !== undefined);
    const s = this.#step('encoder');
    if (!sparseOnly && 'effect' in s && s.effect === 'restart') this.#shutdownNow('encoder reconnected (restartOnEncoderReconnect)', (c) => c.tracks === undefined);
    // Validate everything before changing anything: a rejected header leaves the point untouched.
    this.#content.tracks.check(headers, session.streamId);
    if (!this.#streams.has(session.streamId) && this.#streams.size >= MAX_STREAMS) {
      throw new SmoothError('ERR_BAD_HEADER', `a publishing point takes at most ${MAX_STREAMS} stream ids per session`);
    }
    const map = new Map<number, Track>();
    const created: TrackHeader[] = [];
    for (const h of headers) {
      const added = this.#content.tracks.add(h);
      if (added.created) created.push(added.track.header);
      added.track.live++;
      map.set(h.trackId, added.track);
    }
    session.bind(map);
    let stream = this.#streams.get(session.streamId);
    const reconnect = stream !== undefined;
    if (!stream) {
      stream = { id: session.streamId, connections: 0, ended: false, sparse: sparseOnly, remoteAddress: session.remoteAddress };
      this.#streams.set(session.streamId, stream);
    }
    stream.connections++;
    stream.ended = false;
    stream.remoteAddress = session.remoteAddress;
    if (!sparseOnly) clearTimeout(this.#sourceLost);
    this.#content.touch();
    debug('%s: stream %s attached (%d tracks%s)', this.path, session.streamId, headers.length, reconnect ? ', reconnect' : '');
    // Every change is made: listeners (which may run commands) see a consistent point.
    if (!sparseOnly || this.#state === 'Idle') this.#on('encoder', `encoder ${session.streamId}`);
    for (const track of created) this.#emit('trackHeader', { point: this.path, track });
    this.#emit('streamStarted', { point: this.path, streamId: session.streamId, remoteAddress: session.remoteAddress, reconnect });
  }

  #fragment(track: Track, fragment: MediaFragment): void {
    if (!this.#content.add(track, fragment)) return;
    this.#emit('fragment', { point: this.path, track: track.key, fragment });
    // The point starts with its media: a caption or a splice alone is nothing to play.
    if (track.info.parent === undefined) this.#on('fragment', 'first fragment');
  }

  #restarted(session: IngestSession, track: Track, time: bigint, duration: bigint): TimeShift | undefined {
    const action = this.#settings.encoderRestart;
    const newest = track.timeline.newest!;
    this.#encoderCounts.restarts++;
    const what = `stream ${session.streamId} restarted: ${track.key} went back from ${newest} to ${time}`;
    if (action === 'refuse') {
      debug('%s: %s; refused (encoderRestart=refuse)', this.path, what);
      this.#emit('encoderRestart', { point: this.path, streamId: session.streamId, track: track.key, time, newest, action });
      throw new SmoothError('ERR_ENCODER_RESTART', `the encoder restarted (its times went back from ${newest} to ${time}); this publishing point refuses restarted encoders`);
    }
    if (action === 'reset') {
      debug('%s: %s; a fresh session starts (encoderRestart=reset)', this.path, what);
      this.#emit('encoderRestart', { point: this.path, streamId: session.streamId, track: track.key, time, newest, action });
      this.#reset();
      return undefined;
    }
    const { shift, reused } = this.#content.restartShift(track, time, duration);
    const ticks = shiftIn(shift, track.info.timescale);
    debug('%s: %s; its times continue the timeline, shifted by %s%s', this.path, what, ticks, reused ? ' (as the rest of the restart)' : '');
    this.#emit('encoderRestart', { point: this.path, streamId: session.streamId, track: track.key, time, newest, action, shift: ticks });
    return shift;
  }

  /**
   * A fresh session for a restarted encoder: the window goes, and every stream that has not stored a
   * fragment yet (the restarted one, and its siblings of the same restart) attaches again to new tracks.
   */
  #reset(): void {
    this.#shutdownNow('encoder restarted (encoderRestart=reset)', (c) => !c.delivered);
    this.#setState('Starting', 'encoder restarted (encoderRestart=reset)');
    for (const c of [...this.#sessions]) {
      if (!c.headers) continue; // its header is still on its way: it attaches when it arrives
      try {
        this.#attach(c, c.headers);
      } catch {
        // Its header no longer fits (the fresh session took other tracks first): it goes, as in a shutdown.
        this.#detach(c);
        c.onKill?.();
      }
    }
  }

  #dropped(session: IngestSession, track: Track, time: bigint, behind: boolean): void {
    this.#encoderCounts.duplicatesDropped++;
    const reason = behind ? 'behind' : 'duplicate';
    debug('%s: stream %s: %s fragment %s at %s dropped (first copy wins)', this.path, session.streamId, reason, track.key, time);
    this.#emit('fragmentDropped', { point: this.path, streamId: session.streamId, track: track.key, time, reason });
  }

  #endOfStream(session: IngestSession): void {
    this.#dropStale(session);
    // Nothing follows the held-back tail of a track nobody feeds any more: publish it with whatever
    // lookahead exists.
    for (const t of this.#release(session)) if (t.live === 0) this.#content.publishAll(t);
    const stream = this.#streams.get(session.streamId);
    const others = [...this.#sessions].some((c) => c !== session && c.streamId === session.streamId && !c.eos);
    if (stream && !others) stream.ended = true;
    this.#content.touch();
    const media = [...this.#streams.values()].filter((s) => !s.sparse);
    if (media.length > 0 && media.every((s) => s.ended)) this.#on('endOfStream', 'end of stream');
  }

  /**
   * Another connection of the same stream that has sent nothing for two fragment durations (at least
   * 2 s) is one the encoder left half-open before it reconnected: the end of stream ends it too, so the
   * point does not wait for the idle and source-lost timers to stop.
   */
  #dropStale(session: IngestSession): void {
    const now = this.#options.clock.now();
    for (const c of [...this.#sessions]) {
      if (c === session || c.streamId !== session.streamId || c.eos || !c.stale(now)) continue;
      debug('%s: stream %s: a connection idle for %d ms ends with the end of stream of its reconnect', this.path, c.streamId, now - c.lastActive);
      this.#detach(c);
      c.onKill?.();
    }
  }

  #closed(session: IngestSession, reason: SessionEnd, err?: SmoothError): void {
    if (!this.#detach(session)) return;
    const attached = session.tracks !== undefined;
    if (attached) this.#content.touch();
    if (err) {
      if (err.code === 'ERR_ENCODER_RESTART' || err.code === 'ERR_ENCODER_BEHIND' || err.code === 'ERR_TIME_JUMP') this.#encoderCounts.refused++;
      debug('%s: stream %s rejected: %s', this.path, session.streamId, err.message);
      this.#emit('inputRejected', { point: this.path, streamId: session.streamId, code: err.code, message: err.message });
    }
    if (!attached) return; // never got past the header
    debug('%s: stream %s %s', this.path, session.streamId, reason);
    this.#emit('streamEnded', { point: this.path, streamId: session.streamId, reason });
    this.#armSourceLost();
  }

  // ---- lifecycle ----

  #step(input: PointCommand | PointEvent): ReturnType<typeof step> {
    return step(this.#state, input, {
      startOnFirstRequest: this.#settings.startOnFirstRequest,
      restartOnEncoderReconnect: this.#settings.restartOnEncoderReconnect,
      error: this.#error,
    });
  }

  /** Applies an event the table may act on (refusals of events are not errors: nothing happens). */
  #on(input: PointEvent, reason: string): void {
    const s = this.#step(input);
    if ('effect' in s) this.#run(s.effect, reason);
  }

  #run(effect: Effect, reason: string): void {
    if (effect === 'start') this.#setState('Starting', reason);
    else if (effect === 'started') this.#setState('Started', reason);
    else if (effect === 'stop') this.#stopNow(reason);
    else if (effect === 'shutdown') this.#shutdownNow(reason);
    else {
      this.#shutdownNow(reason);
      this.#setState('Starting', reason);
    }
  }

  /** Started/Starting → Stopping → Stopped: encoders go, the held-back tail is published. */
  #stopNow(reason: string): void {
    clearTimeout(this.#sourceLost);
    this.#setState('Stopping', reason);
    this.#kill();
    for (const t of this.#content.tracks) this.#content.publishAll(t);
    for (const st of this.#streams.values()) st.ended = true;
    this.#setState('Stopped', reason);
    this.#content.touch();
  }

  /**
   * → ShuttingDown → Idle: drops the live window and applies settings that waited for Idle. A point whose
   * definition is still malformed goes back to Error instead.
   */
  #shutdownNow(reason: string, keep?: (c: IngestSession) => boolean): void {
    clearTimeout(this.#sourceLost);
    this.#setState('ShuttingDown', reason);
    this.#kill(keep);
    this.#content.clear();
    this.#streams.clear();
    if (this.#pendingSettings) {
      this.#settings = this.#pendingSettings;
      this.#pendingSettings = undefined;
    }
    this.#content.touch();
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
  #kill(keep?: (c: IngestSession) => boolean): void {
    for (const c of this.#sessions) {
      if (c.eos || keep?.(c)) continue;
      this.#detach(c);
      c.onKill?.();
    }
  }

  /**
   * Ends a session's part in the point: closed, no longer a connection of its stream, its tracks
   * released.
   * @returns false when it was already closed
   */
  #detach(session: IngestSession): boolean {
    if (!session.close()) return false;
    this.#sessions.delete(session);
    this.#limits.slots.give();
    const held = session.releaseBuffered();
    if (held !== 0) this.#content.holdPartial(-held);
    const stream = this.#streams.get(session.streamId);
    if (stream && session.tracks) stream.connections--;
    this.#release(session);
    return true;
  }

  /** An ingest connection holds `delta` more bytes of a box still arriving (negative: fewer). */
  #buffered(delta: number): void {
    if (this.#content.holdPartial(delta)) return;
    const max = this.#limits.budget.max;
    throw new SmoothError(
      'ERR_BUDGET_EXCEEDED',
      `the server holds as much as its byte budget allows (maxBytes ${max}) and cannot take more of this box now; try again later`,
    );
  }

  /** The session no longer feeds its tracks; returns them. */
  #release(session: IngestSession): Track[] {
    const tracks = [...(session.release()?.values() ?? [])];
    for (const t of tracks) t.live--;
    return tracks;
  }

  /**
   * Every encoder disconnected without end-of-stream: wait `sourceLostTimeout` for a reconnect (which
   * continues the timeline), then stop as IIS does when its source is lost.
   */
  #armSourceLost(): void {
    const timeout = this.#options.sourceLostTimeout;
    if (timeout === 0 || this.#hasSource() || (this.#state !== 'Started' && this.#state !== 'Starting')) return;
    clearTimeout(this.#sourceLost);
    this.#sourceLost = setTimeout(() => {
      if (!this.#hasSource()) this.#on('sourceLost', 'source lost');
    }, timeout).unref();
  }

  /** An ingest connection that may carry media is open (a sparse-only one does not keep the point going). */
  #hasSource(): boolean {
    for (const c of this.#sessions) if (!c.sparseOnly) return true;
    return false;
  }

  #setState(state: PointState, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    debug('%s: %s%s', this.path, state, reason ? ` (${reason})` : '');
    this.#emit('state', { point: this.path, state, reason });
  }

  // ---- media: store, timelines, packaging ----

  /** What the manifest lists now. */
  snapshot(): ManifestSnapshot {
    return this.#content.snapshot();
  }

  /** The client manifest, rendered once per change of the timeline. */
  manifest(): RenderedManifest {
    return this.#content.manifest();
  }

  /**
   * Finds a fragment for `QualityLevels(bitrate[,attrs])/Fragments(name=time)`.
   * 412 semantics (`not-yet`) for times past the newest available fragment while the stream can still
   * deliver them; `not-found` for unknown tracks, trimmed times and times that start no fragment.
   */
  lookup(name: string, bitrate: number, attributes: ReadonlyArray<readonly [string, string]>, time: bigint): FragmentLookup {
    return this.#content.lookup(name, bitrate, attributes, time);
  }

  /**
   * For the newest fragment of a live track (its tfrf would be empty): settles once the track has a
   * fragment after it, ends, or the wait (`edgeWait`) runs out; then {@link again} tells what the
   * request gets.
   * @returns `undefined` when there is nothing to wait for
   */
  awaitSuccessor(found: Extract<FragmentLookup, { status: 'ok' }>): Promise<void> | undefined {
    return this.#content.awaitSuccessor(found);
  }

  /** A fragment {@link lookup} found, as it stands now (its tfrf count); not counted as another request. */
  again(found: Extract<FragmentLookup, { status: 'ok' }>): FragmentLookup {
    return this.#content.again(found);
  }

  /**
   * The Smooth fragment response for a fragment {@link lookup} found: the `moof` (built once per number
   * of tfrf entries) and the stored sample bytes.
   * @returns `undefined` when the fragment left the point meanwhile
   * @throws SmoothError ERR_STORE when the store fails (the failure is reported as a `failure` event)
   */
  smoothFragment(found: Extract<FragmentLookup, { status: 'ok' }>): Awaitable<PackagedFragment | undefined> {
    return this.#content.smoothFragment(found);
  }

  /**
   * A CMAF media segment (for DASH and HLS) of a fragment {@link lookup} found, built from the stored
   * fragment without going through Smooth: `tfdt`, no uuid boxes, the track_ID of the track's init
   * segment ({@link headers}); built once per variant, samples as the stored view.
   * @param options.decodeTimeOffset - added to every decode time (the output's shift that keeps `tfdt` ≥ 0)
   * @returns `undefined` when the fragment left the point meanwhile
   * @throws SmoothError ERR_STORE when the store fails; RangeError when the offset leaves `tfdt` negative
   */
  cmafSegment(
    found: Extract<FragmentLookup, { status: 'ok' }>,
    options: { decodeTimeOffset?: bigint; sequenceNumber?: number } = {},
  ): Awaitable<PackagedFragment | undefined> {
    return this.#content.cmafSegment(found, options);
  }

  /** The DASH MPD, rendered once per change of the timeline. */
  mpd(): RenderedOutput {
    return this.#content.mpd();
  }

  /** The HLS master playlist, rendered once per change of the timeline. */
  hlsMaster(): RenderedOutput {
    return this.#content.hlsMaster();
  }

  /** The HLS media playlist of representation `id` (see `representationId`); `undefined` for an unknown one. */
  hlsMedia(id: string): RenderedOutput | undefined {
    return this.#content.hlsMedia(id);
  }

  /** The header of representation `id`: its description and init segment (CMAF header). */
  initSegment(id: string): TrackHeader | undefined {
    return this.#content.initSegment(id);
  }

  /**
   * The DASH/HLS segment of representation `id` starting at output time `time`; deliver it with
   * {@link cmafSegment} and the lookup's `decodeTimeOffset`.
   */
  segment(id: string, time: bigint): SegmentLookup {
    return this.#content.segment(id, time);
  }

  // ---- events ----

  #emit<K extends keyof PointEvents>(name: K, payload: PointEvents[K][0]): void {
    (this.emit as (name: K, payload: PointEvents[K][0]) => boolean)(name, payload);
  }

  /** Reports a failure outside the media path: counted, logged, and raised as a `failure` event. */
  #failed(source: FailureSource, error: unknown, event?: string): void {
    this.#failures[source]++;
    const message = describeError(error);
    debug('%s: %s failed%s: %s', this.path, source, event ? ` (${event} listener)` : '', message);
    // A failing `failure` listener is counted and logged, not reported again (that would never end).
    if (event !== 'failure') this.#emit('failure', { point: this.path, source, event, message, error });
  }
}

