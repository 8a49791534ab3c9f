/**
 * The simulated encoder: pushes the tracks of a {@link Source} to a publishing point as a live encoder
 * does (MS-SSTR 3.3.4, protocol doc §2): a long chunked `POST <point>.isml/Streams(<id>)` per stream,
 * the header boxes, then each fragment when its end is due in real time, looping the content with
 * continuous timestamps (`timeline.ts`). Each stream is an {@link IngestPost} (`post.ts`), which
 * reconnects with the identical header and the last two fragments of every track (§2.10); a clean stop
 * ends every POST with an empty `mfra` (end of stream, §2.9).
 *
 * Optional sparse tracks (`sparse.ts`: captions, SCTE-35 ad markers) go in one more POST,
 * `Streams(<id>-sparse)`, as Azure asks of sparse tracks. Their fragments follow the parent track's:
 * each goes out once the parent fragment it belongs to has been sent, so the sparse stream never runs
 * ahead of the media.
 *
 * Memory is bounded: per stream, the header and the last two fragments of each track; one fragment is
 * read from its file at a time; at most {@link SPARSE_BACKLOG} parent fragments wait for their sparse
 * fragments.
 */
import { EventEmitter } from 'node:events';
import type * as https from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { SmoothError } from '../errors';
import { OutgoingFragment, buildFragment, sampleFragment } from '../ismv/fragment';
import { madeUpStreamHeader, streamHeader } from '../ismv/header';
import { EncoderEvents, IngestPost, PostContext, Stopped } from './post';
import { AdMarkerOptions, CaptionOptions, SparseTracks } from './sparse';

export type { EncoderEvents } from './post';
import { Source, openSource } from '../ismv/source';
import { FragmentPlan, LoopTimeline, START_TIMESCALE } from './timeline';

/** Options of the simulated encoder. */
export interface EncoderOptions {
  /**
   * The publishing point, `http(s)://host/path/<name>.isml`; the encoder appends `/Streams(<id>)`. A URL
   * that already ends in `/Streams(<id>)` is accepted too (its id is then the stream id).
   */
  url: string;
  /** Input: `.ismv` / `.isma` files and `.ism` server manifests. Either this or `source`. */
  files?: readonly string[];
  /** An already opened input (not closed by the encoder). */
  source?: Source;
  /** How many times to play the content; `0` (default) loops forever. */
  loops?: number;
  /**
   * First timestamp, in 100-ns units: `'zero'` (default, as ffmpeg starts), `'now'` = the current UTC
   * time since 1970 (beyond 2^53, as UTC-clocked encoders send; a restarted encoder then continues
   * forward instead of repeating times the server already has), or an explicit value.
   *
   * dash.js cannot follow `'now'` at the 10 MHz timescale: it reads the tfrf times of live fragments
   * into doubles, so audio times that are not exactly representable above 2^53 come back rounded and
   * their requests get 404. GStreamer keeps them exact.
   */
  start?: 'now' | 'zero' | bigint;
  /** One POST per track (as hardware encoders do) instead of one POST for all tracks. Default false. */
  perTrack?: boolean;
  /** Stream id in `Streams(<id>)`; per-track streams are `<id>-<trackName>-<bitrate>`. Default `live-smooth`. */
  streamId?: string;
  /** `title` meta of the Live Server Manifest. */
  title?: string;
  /** Pace at this multiple of real time (tests); `Infinity` sends as fast as the connection takes it. Default 1. */
  speed?: number;
  /**
   * Seconds of media sent at once when the push starts, as if the encoder had been running that long;
   * then real time. Players that join at once then find a few fragments listed (dash.js does not start
   * on a live window of one or two fragments). Default 0.
   */
  backlog?: number;
  /** Reconnection after a dropped connection. */
  reconnect?: {
    /** First retry delay in ms, doubled per failed attempt. Default 500. */
    minDelay?: number;
    /** Longest retry delay in ms. Default 5000. */
    maxDelay?: number;
    /** Failed attempts in a row before giving up (`ERR_ENCODER_GAVE_UP`). Default `Infinity`, as encoders do. */
    maxAttempts?: number;
  };
  /**
   * A connection that accepts no bytes for this many ms is dropped and re-established. Default: 10 s or
   * three times the longest fragment (at `speed`), whichever is longer.
   */
  sendTimeout?: number;
  /** Extra request headers (e.g. `Authorization`). */
  headers?: Readonly<Record<string, string>>;
  /**
   * Ingest token (the server's `ingestAuth.tokens`), sent as `Authorization: Bearer <token>`; an
   * `Authorization` in {@link headers} wins.
   */
  token?: string;
  /** Passed to `http.request` / `https.request` (e.g. `ca`, `rejectUnauthorized`). */
  requestOptions?: https.RequestOptions;
  /**
   * A TTML caption track (`true`, or `{ language, trackName }`; defaults `en`, `captions`): one caption
   * per fragment of the parent track (the first video track, else the first track), reading
   * `live-smooth hh:mm:ss` (the fragment start). A sparse `<textstream>` (Subtype `CAPT`, FourCC
   * `TTML`, `manifestOutput` false) in the `Streams(<id>-sparse)` POST. Default off.
   */
  captions?: boolean | CaptionOptions;
  /**
   * SCTE-35 ad markers (`{ every, duration, trackName }`, seconds; name default `ads`): a
   * `splice_insert` at the first parent fragment start `every` seconds after the stream start (then
   * after the previous marker) announcing a break of `duration` seconds, in Azure's sparse-track format
   * (Subtype `DATA`, Scheme `urn:scte:scte35:2013:bin`, `manifestOutput` true), in the
   * `Streams(<id>-sparse)` POST. Without captions that POST is closed between markers, as Azure asks.
   * Default off.
   */
  adMarkers?: AdMarkerOptions;
}

/** Per-track counters of {@link EncoderStatus}. */
export interface TrackStatus {
  type: string;
  name: string;
  bitrate: number;
  /** The `Streams(<id>)` carrying it. */
  streamId: string;
  /** Fragments sent (not counting resends). */
  fragments: number;
}

/** A snapshot of the encoder. */
export interface EncoderStatus {
  state: 'idle' | 'running' | 'stopping' | 'stopped' | 'failed';
  /** Seconds of media sent: the end of the newest fragment, from the stream's start. */
  mediaTime: number;
  /** Seconds since the push started. */
  elapsed: number;
  /** The loop being sent (0-based). */
  loop: number;
  /** Length of one loop, seconds. */
  loopSeconds: number;
  tracks: TrackStatus[];
  /** Bytes sent, including headers and resends. */
  bytes: number;
  /** Bits per second sent over the last 10 s. */
  bitrate: number;
  /** Connections re-established after a drop. */
  reconnects: number;
  /** Streams currently connected, of `streams`. */
  connected: number;
  streams: number;
}

const STREAM_ID = /^[A-Za-z0-9._~-]{1,128}$/;
const BITRATE_WINDOW_MS = 10_000;
/**
 * Most parent fragments waiting for their sparse fragments, while the sparse POST cannot keep up (it is
 * reconnecting): beyond it the oldest are dropped, as a live encoder loses what it cannot send. At 2 s
 * fragments, 10 minutes.
 */
export const SPARSE_BACKLOG = 300;

function invalid(name: string, problem: string): SmoothError {
  return new SmoothError('ERR_INVALID_OPTION', `option ${name} ${problem}`);
}

/** The request headers: {@link EncoderOptions.headers}, with the token as `Authorization: Bearer` unless they set one. */
function authHeaders(options: EncoderOptions): Readonly<Record<string, string>> {
  const headers = options.headers ?? {};
  if (options.token === undefined) return headers;
  if (typeof options.token !== 'string' || options.token === '' || /[\s\0-\x1f\x7f]/.test(options.token)) {
    throw invalid('token', 'must be a non-empty string without spaces or control characters');
  }
  if (Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) return headers;
  return { Authorization: `Bearer ${options.token}`, ...headers };
}

/** Cursor of one track through its fragments and loops. */
interface Cursor {
  track: number;
  /** Index of the track in its stream (its track_ID − 1). */
  local: number;
  plan: FragmentPlan | undefined;
  due: number;
}

/** The sparse POST and the parent fragments waiting for their sparse fragments. */
interface SparseStream {
  post: IngestPost;
  tracks: SparseTracks;
  /** Parent fragments sent, oldest first. */
  queue: FragmentPlan[];
  /** Wakes the sparse pump waiting for the queue. */
  wake: (() => void) | undefined;
  /** No more parent fragments will come. */
  closed: boolean;
  /** The sparse stream failed for good; the media goes on without it. */
  failed: boolean;
}

/** The point URL without `/Streams(…)`, and the stream id it named, if any. */
function pointUrl(raw: string): { base: URL; streamId: string | undefined } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('url', `is not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('url', 'must be http: or https:');
  const m = /^(.*\.isml)(?:\/(?:Streams\(([^)]*)\))?)?$/i.exec(url.pathname);
  if (!m) throw invalid('url', `must name a publishing point (…/<name>.isml): ${url.pathname}`);
  const base = new URL(url.href);
  base.pathname = m[1]!;
  base.search = '';
  base.hash = '';
  return { base, streamId: m[2] };
}

/**
 * A simulated live encoder. Create it with {@link SimulatedEncoder.open} (or {@link startEncoder}),
 * start it with {@link SimulatedEncoder.start}, stop it with {@link SimulatedEncoder.stop}.
 */
export class SimulatedEncoder extends EventEmitter<EncoderEvents> {
  /** The input. */
  readonly source: Source;
  /** The loop arithmetic. */
  readonly timeline: LoopTimeline;
  readonly #ownsSource: boolean;
  readonly #loops: number;
  readonly #speed: number;
  readonly #backlog: number;
  readonly #posts: Array<{ post: IngestPost; tracks: number[] }>;
  readonly #sparse: SparseStream | undefined;
  /** Media pumps still sending fragments; the sparse queue closes when none is. */
  #mediaSending = 0;
  /** The sparse pump (settles when the sparse POST has ended); resolved at once without sparse tracks. */
  #sparseEnded: Promise<void> = Promise.resolve();
  readonly #stop = new AbortController();
  readonly #status: TrackStatus[];
  #state: EncoderStatus['state'] = 'idle';
  #done: Promise<void> | undefined;
  /** Wall clock (performance.now) at which media time 0 is due; `backlog` seconds before the start. */
  #t0 = 0;
  #startedAt = 0;
  #bytes = 0;
  #window: Array<{ at: number; bytes: number }> = [];
  #reconnects = 0;
  #mediaMicros = 0;
  #loop = 0;

  private constructor(options: EncoderOptions, source: Source, ownsSource: boolean) {
    super();
    this.source = source;
    this.#ownsSource = ownsSource;
    const loops = options.loops ?? 0;
    if (!Number.isInteger(loops) || loops < 0) throw invalid('loops', 'must be a whole number ≥ 0 (0 = forever)');
    this.#loops = loops === 0 ? Infinity : loops;
    const speed = options.speed ?? 1;
    if (!(speed > 0)) throw invalid('speed', 'must be > 0');
    this.#speed = speed;
    const backlog = options.backlog ?? 0;
    if (!(backlog >= 0) || !Number.isFinite(backlog)) throw invalid('backlog', 'must be a number of seconds ≥ 0');
    this.#backlog = backlog;
    const startOption = options.start ?? 'zero';
    let start: bigint;
    if (startOption === 'now') start = BigInt(Date.now()) * (START_TIMESCALE / 1000n);
    else if (startOption === 'zero') start = 0n;
    else if (typeof startOption === 'bigint' && startOption >= 0n) start = startOption;
    else throw invalid('start', "must be 'now', 'zero' or a bigint ≥ 0");
    const tracks = source.tracks;
    this.timeline = new LoopTimeline(
      tracks.map((t) => ({ type: t.info.type, timescale: t.info.timescale, fragments: t.fragments })),
      start,
    );
    const { base, streamId: fromUrl } = pointUrl(options.url);
    if (fromUrl !== undefined && options.perTrack) throw invalid('url', 'must not name a stream with perTrack (ids are derived)');
    const streamId = options.streamId ?? fromUrl ?? 'live-smooth';
    if (!STREAM_ID.test(streamId)) throw invalid('streamId', 'must be 1-128 characters of A-Z a-z 0-9 . _ ~ -');
    // Longest fragment in ms (a reduce: a long file has too many fragments to spread into Math.max).
    const longest = tracks.reduce(
      (max, t) => t.fragments.reduce((m, f) => Math.max(m, (Number(f.duration) / t.info.timescale) * 1000), max),
      0,
    );
    const r = options.reconnect ?? {};
    const ctx: PostContext = {
      options: {
        headers: authHeaders(options),
        requestOptions: options.requestOptions ?? {},
        reconnect: { minDelay: r.minDelay ?? 500, maxDelay: r.maxDelay ?? 5000, maxAttempts: r.maxAttempts ?? Infinity },
        sendTimeout: options.sendTimeout ?? Math.max(10_000, Math.ceil((3 * longest) / Math.min(speed, 1e6))),
      },
      signal: this.#stop.signal,
      onBytes: (n) => this.#count(n),
      emit: this.emit.bind(this),
      onReconnect: () => this.#reconnects++,
    };
    for (const [name, v] of Object.entries(ctx.options.reconnect)) {
      if (!(v >= 1)) throw invalid(`reconnect.${name}`, 'must be ≥ 1');
    }
    const streamUrl = (id: string): URL => {
      const u = new URL(base.href);
      u.pathname += `/Streams(${id})`;
      return u;
    };
    if (options.perTrack) {
      const ids = new Set<string>();
      this.#posts = tracks.map((t, i) => {
        let id = `${streamId}-${t.info.name}-${t.info.bitrate}`.slice(0, 120);
        if (ids.has(id)) id += `-${i}`;
        ids.add(id);
        return { post: new IngestPost(streamUrl(id), id, streamHeader([t], options.title), 1, ctx), tracks: [i] };
      });
    } else {
      const all = tracks.map((_, i) => i);
      this.#posts = [{ post: new IngestPost(streamUrl(streamId), streamId, streamHeader(tracks, options.title), tracks.length, ctx), tracks: all }];
    }
    this.#status = tracks.map((t, i) => ({
      type: t.info.type,
      name: t.info.name,
      bitrate: t.info.bitrate,
      streamId: this.#posts.find((p) => p.tracks.includes(i))!.post.streamId,
      fragments: 0,
    }));
    if (options.captions || options.adMarkers) {
      const ref = tracks[this.timeline.reference]!;
      const sparse = new SparseTracks(
        { captions: options.captions, adMarkers: options.adMarkers },
        { name: ref.info.name, timescale: ref.info.timescale, averageFragment: this.timeline.period / BigInt(ref.fragments.length) },
        tracks.map((t) => t.info.name),
      );
      if (sparse.tracks.length > 0) {
        const id = `${streamId.slice(0, 121)}-sparse`;
        const header = madeUpStreamHeader(sparse.tracks, options.title);
        const post = new IngestPost(streamUrl(id), id, header, sparse.tracks.length, ctx);
        this.#sparse = { post, tracks: sparse, queue: [], wake: undefined, closed: false, failed: false };
        for (const t of sparse.tracks) {
          this.#status.push({ type: t.info.type, name: t.info.name, bitrate: t.info.bitrate, streamId: id, fragments: 0 });
        }
      }
    }
  }

  /**
   * Opens the input and checks the options; connects nothing yet.
   * @throws EncoderError ERR_ENCODER_INPUT for a bad input file; SmoothError ERR_INVALID_OPTION for a bad option
   */
  static async open(options: EncoderOptions): Promise<SimulatedEncoder> {
    if (!options.source && !options.files?.length) throw invalid('files', 'must list at least one input file');
    const source = options.source ?? (await openSource(options.files!));
    try {
      return new SimulatedEncoder(options, source, !options.source);
    } catch (err) {
      if (!options.source) await source.close();
      throw err;
    }
  }

  /**
   * Starts pushing (once; later calls return the same promise).
   * @returns resolves when the push ended: every loop sent, or {@link SimulatedEncoder.stop}; rejects
   *   with an EncoderError when the server refused the stream or reconnecting gave up
   */
  start(): Promise<void> {
    if (!this.#done) {
      this.#state = 'running';
      this.#startedAt = performance.now();
      this.#t0 = this.#startedAt - (this.#backlog * 1000) / this.#speed;
      this.#done = this.#run();
      this.#done.catch(() => undefined); // reported through the returned promise and the `end` event
    }
    return this.#done;
  }

  /** Resolves or rejects when the push ends (see {@link SimulatedEncoder.start}); `undefined` before start. */
  get done(): Promise<void> | undefined {
    return this.#done;
  }

  /**
   * Stops cleanly: no further fragments, every POST ends with an empty `mfra`. Resolves when they ended.
   */
  async stop(): Promise<void> {
    if (this.#state === 'running') this.#state = 'stopping';
    this.#stop.abort();
    if (this.#done) await this.#done.catch(() => undefined);
    else if (this.#ownsSource) await this.source.close();
  }

  /** A snapshot of the encoder's progress. */
  status(): EncoderStatus {
    const now = performance.now();
    this.#trimWindow(now);
    const span = Math.min(BITRATE_WINDOW_MS, Math.max(1000, now - this.#startedAt));
    const recent = this.#window.reduce((s, w) => s + w.bytes, 0);
    // A sparse POST without captions is closed between markers on purpose: not a connection down.
    const sparseUp = this.#sparse !== undefined && (this.#sparse.post.connected || this.#sparse.post.idle);
    return {
      state: this.#state,
      mediaTime: this.#mediaMicros / 1e6,
      elapsed: this.#startedAt ? (now - this.#startedAt) / 1000 : 0,
      loop: this.#loop,
      loopSeconds: this.timeline.periodSeconds,
      tracks: this.#status.map((t) => ({ ...t })),
      bytes: this.#bytes,
      bitrate: this.#done ? Math.round((recent * 8 * 1000) / span) : 0,
      reconnects: this.#reconnects,
      connected: this.#posts.filter((p) => p.post.connected).length + (sparseUp ? 1 : 0),
      streams: this.#posts.length + (this.#sparse ? 1 : 0),
    };
  }

  #count(n: number): void {
    this.#bytes += n;
    const now = performance.now();
    this.#window.push({ at: now, bytes: n });
    this.#trimWindow(now);
  }

  #trimWindow(now: number): void {
    // Bounded: by time, and by count for unpaced pushes that write thousands of chunks per second.
    while (this.#window.length > 0 && (now - this.#window[0]!.at > BITRATE_WINDOW_MS || this.#window.length > 4096)) {
      this.#window.shift();
    }
  }

  async #run(): Promise<void> {
    this.#mediaSending = this.#posts.length;
    if (this.#sparse) this.#sparseEnded = this.#pumpSparse(this.#sparse);
    const results = await Promise.allSettled(this.#posts.map((p) => this.#pump(p.post, p.tracks)));
    await this.#sparseEnded;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    this.#state = failed ? 'failed' : 'stopped';
    if (this.#ownsSource) await this.source.close();
    const error = failed ? (failed.reason as Error) : undefined;
    this.emit('end', { error });
    if (error) throw error;
  }

  /** The next planned fragment of a track at or after (loop, index), skipping ones the previous loop covers. */
  #advance(cursor: Cursor, loop: number, index: number): void {
    const count = this.source.tracks[cursor.track]!.fragments.length;
    for (;;) {
      if (index >= count) {
        loop++;
        index = 0;
      }
      if (loop >= this.#loops) {
        cursor.plan = undefined;
        return;
      }
      const plan = this.timeline.plan(cursor.track, loop, index);
      if (plan) {
        cursor.plan = plan;
        cursor.due = this.timeline.dueMicros(plan);
        return;
      }
      index++;
    }
  }

  /** Sends one stream's fragments in due order, then ends it. */
  async #pump(post: IngestPost, tracks: number[]): Promise<void> {
    const cursors: Cursor[] = tracks.map((track, local) => ({ track, local, plan: undefined, due: 0 }));
    for (const c of cursors) this.#advance(c, 0, 0);
    try {
      try {
        await this.#sendMedia(post, cursors);
      } finally {
        if (--this.#mediaSending === 0) this.#closeSparse();
      }
    } catch (err) {
      if (!(err instanceof Stopped)) {
        // A fatal error ends this stream without end of stream, and stops the others cleanly.
        post.abort();
        this.#stop.abort();
        throw err;
      }
    }
    // The sparse stream ends first: its tracks hang off the media ones, and a server may stop the point
    // as soon as the media streams have ended.
    await this.#sparseEnded;
    await post.finish();
  }

  /** Sends one stream's fragments in due order until they run out or the encoder stops. */
  async #sendMedia(post: IngestPost, cursors: Cursor[]): Promise<void> {
    for (;;) {
      let next: Cursor | undefined;
      for (const c of cursors) if (c.plan && (!next || c.due < next.due)) next = c;
      if (!next) break;
      const plan = next.plan!;
      if (!(await this.#waitUntil(next.due))) break;
      const track = this.source.tracks[next.track]!;
      const raw = await this.source.read(track, plan.index);
      const fragment = buildFragment(raw, track, plan, next.local + 1, post.nextSequence());
      await post.send(next.local, fragment);
      this.#sent(post, next.track, plan, fragment, next.due);
      if (next.track === this.timeline.reference) this.#toSparse(plan);
      this.#advance(next, plan.loop, plan.index + 1);
    }
  }

  /** Hands a parent fragment just sent to the sparse pump. */
  #toSparse(plan: FragmentPlan): void {
    const s = this.#sparse;
    if (!s || s.failed || s.closed) return;
    s.queue.push(plan);
    if (s.queue.length > SPARSE_BACKLOG) s.queue.shift();
    s.wake?.();
  }

  #closeSparse(): void {
    const s = this.#sparse;
    if (!s) return;
    s.closed = true;
    s.wake?.();
  }

  /** The next parent fragment for the sparse pump; `undefined` once the media is done and the queue empty. */
  #nextForSparse(s: SparseStream): Promise<FragmentPlan | undefined> {
    if (s.queue.length > 0 || s.closed) return Promise.resolve(s.queue.shift());
    return new Promise((ok) => {
      s.wake = () => {
        s.wake = undefined;
        ok(s.queue.shift());
      };
    });
  }

  /**
   * Sends the sparse fragments of each parent fragment the media pumps sent, then ends the sparse POST.
   * Never rejects: a sparse stream that fails is reported (`sparseFailed`) and the media goes on.
   */
  async #pumpSparse(s: SparseStream): Promise<void> {
    const start = this.timeline.base(this.timeline.reference);
    const sourceTracks = this.source.tracks.length;
    try {
      try {
        for (;;) {
          const plan = await this.#nextForSparse(s);
          if (!plan) break;
          const samples = s.tracks.samplesFor(plan.time, plan.duration, start);
          for (const f of samples) {
            const fragment = sampleFragment(f.sample, f.local + 1, s.post.nextSequence(), f.time, f.duration);
            await s.post.send(f.local, fragment);
            this.#status[sourceTracks + f.local]!.fragments++;
            this.emit('fragment', {
              streamId: s.post.streamId,
              track: sourceTracks + f.local,
              loop: plan.loop,
              time: fragment.time,
              duration: fragment.duration,
              bytes: fragment.moof.length + fragment.mdat.length,
            });
          }
          // Azure: a sparse POST closes between events. Captions leave no gap between them to close in.
          if (samples.length > 0 && !s.tracks.captions) await s.post.close();
        }
      } catch (err) {
        if (!(err instanceof Stopped)) throw err;
      }
      await s.post.finish();
    } catch (err) {
      s.failed = true;
      s.queue.length = 0;
      s.post.abort();
      this.emit('sparseFailed', { streamId: s.post.streamId, error: err as Error });
    }
  }

  #sent(post: IngestPost, track: number, plan: FragmentPlan, fragment: OutgoingFragment, due: number): void {
    this.#status[track]!.fragments++;
    if (due > this.#mediaMicros) this.#mediaMicros = due;
    if (track === this.timeline.reference) this.#loop = plan.loop;
    this.emit('fragment', {
      streamId: post.streamId,
      track,
      loop: plan.loop,
      time: fragment.time,
      duration: fragment.duration,
      bytes: fragment.moof.length + fragment.mdat.length,
    });
  }

  /** Waits until `micros` of media time are due; false when the encoder stopped first. */
  async #waitUntil(micros: number): Promise<boolean> {
    if (this.#stop.signal.aborted) return false;
    const wait = this.#t0 + micros / 1000 / this.#speed - performance.now();
    try {
      if (wait > 0) await delay(wait, undefined, { signal: this.#stop.signal });
      else await new Promise<void>((ok) => setImmediate(ok)); // unpaced: still let I/O and stop() run
    } catch {
      return false;
    }
    return !this.#stop.signal.aborted;
  }
}

/**
 * Opens the input and starts pushing.
 * @example
 * const encoder = await startEncoder({ url: 'http://127.0.0.1:3000/live/ch1.isml', files: ['sample.ismv'] });
 * process.on('SIGINT', () => encoder.stop());
 * await encoder.done;
 */
export async function startEncoder(options: EncoderOptions): Promise<SimulatedEncoder> {
  const encoder = await SimulatedEncoder.open(options);
  void encoder.start();
  return encoder;
}

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

/** Short bitrate: `350k`, `1.2M`. */
export function shortBitrate(bps: number): string {
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)}M` : `${Math.round(bps / 1000)}k`;
}

/**
 * One status line, e.g. `00:01:23 loop 3 | fragments 41 41 41 42 | 712 kbit/s | reconnects 0`
 * (fragments per track in input order).
 */
export function formatStatus(s: EncoderStatus): string {
  const down = s.connected < s.streams && s.state === 'running' ? ` | connected ${s.connected}/${s.streams}` : '';
  return (
    `${clock(s.mediaTime)} loop ${s.loop + 1} | fragments ${s.tracks.map((t) => t.fragments).join(' ')} | ` +
    `${Math.round(s.bitrate / 1000)} kbit/s | reconnects ${s.reconnects}${down}`
  );
}
