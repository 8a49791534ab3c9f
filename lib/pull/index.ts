/**
 * Pull publishing points (IIS `sourceType=Pull`, protocol doc §5.4): a point that follows the live
 * presentation of one or more upstream publishing points. It reads the upstream's client manifest,
 * fetches each track's fragments in order (following the `tfrf` the upstream announces), and feeds
 * them to its point as one ingest stream, with the upstream's times. To the point it is an encoder like
 * any other: the same parser, checks, restart rules, archive, DASH/HLS and lifecycle apply, and bad
 * upstream data is refused as bad ingest is.
 *
 * Several upstreams listed are failover: when the one in use stops answering (a network error, a
 * timeout, a 5xx or bad data), the next one continues from the last fragment held. Twins fed the same
 * stream have the same times, so nothing is repeated or missed.
 */
import createDebug from 'debug';
import { SmoothError, describeNetworkError as describe, isSmoothError } from '../errors';
import { smoothIngest } from '../ingest/smooth';
import { smoothFtyp } from '../ismv/header';
import { liveServerManifestBox } from '../ismv/lsm';
import { trackKey } from '../model';
import type { TrackInfo } from '../model';
import { emptyMfra } from '../mp4/edit';
import { synthesizeMvhd, synthesizeTrack } from '../mp4/synth';
import { makeBox } from '../mp4/writer';
import type { PublishingPoint, SourceStatus } from '../point';
import type { IngestSession } from '../point/session';
import { Fetch, UpstreamAnswer, UpstreamFailure, getCapped } from './fetch';
import { UpstreamManifest, UpstreamStream, fragmentPath, parseUpstreamManifest } from './manifest';
import { PulledTrack, heldFor, readUpstreamFragment, resync, startOf, upstreamTrackId } from './track';

const debug = createDebug('live-smooth:pull');

export { parseUpstreamManifest, fragmentPath, UPSTREAM_LIMITS } from './manifest';
export type { UpstreamManifest, UpstreamStream } from './manifest';
export type { Fetch } from './fetch';

/** Options of a {@link Puller}. Every one has a default. */
export interface PullerOptions {
  /** Largest manifest accepted, in bytes. Default 4 MiB. */
  maxManifestBytes?: number;
  /** Largest fragment accepted, in bytes. Default 32 MiB (the origin passes its `maxBoxSize`). */
  maxFragmentBytes?: number;
  /** Ms an upstream may take to answer (a held live request adds two fragment durations). Default 10000. */
  timeout?: number;
  /** Redirects followed per request. Default 3. */
  maxRedirects?: number;
  /** Seconds of the upstream's window taken when pulling starts (at most the point's window). Default 30. */
  backlog?: number;
  /** Wall-clock ms, for the status. Default `Date`. */
  clock?: { now(): number };
  fetch?: Fetch;
}

/** Ms between manifest reads while pulling: new tracks, the end of the presentation, resynchronising. */
const MANIFEST_INTERVAL = 2000;
/** Ms to wait after every upstream failed in a row, growing to {@link MAX_BACKOFF}. */
const MIN_BACKOFF = 500;
const MAX_BACKOFF = 5000;
/** Shortest and longest wait before asking again for a fragment the upstream does not have yet. */
const MIN_POLL = 100;
const MAX_POLL = 1000;
/** The stream id the pulled media is ingested under. */
const STREAM_ID = 'pull';

/**
 * The ingest session a track loop feeds is closed (the point refused a fragment, or dropped the stream):
 * no upstream's doing. The loop ends; the manifest loop opens a session again and restarts it.
 */
class SessionClosed extends Error {}


/** A description of a track set, to notice when the upstream's changes. */
function headerKey(tracks: readonly TrackInfo[]): string {
  return JSON.stringify(tracks);
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Follows the upstream publishing points of one pulled point while the point is Starting or Started,
 * and reports the connection through `point.reportSource`. Created and closed by the origin.
 */
export class Puller {
  readonly #point: PublishingPoint;
  #sources: readonly string[];
  readonly #o: Required<Omit<PullerOptions, 'clock' | 'fetch'>> & { clock: { now(): number }; fetch: Fetch };
  /** Index in `#sources` of the upstream in use. */
  #current = 0;
  /** Upstream failures in a row (any upstream); a success resets it. */
  #failures = 0;
  /** Aborted when pulling stops: every loop and request of the run ends. */
  #run: AbortController | undefined;
  #session: IngestSession | undefined;
  /** Aborted when the session is replaced: the track loops feeding it end. */
  #feeding: AbortController | undefined;
  #header: string | undefined;
  #tracks = new Map<string, PulledTrack>();
  #skipped: string[] = [];
  readonly #onState = (): void => this.#update();
  #closed = false;

  constructor(point: PublishingPoint, sources: readonly string[], options: PullerOptions = {}) {
    this.#point = point;
    this.#sources = sources;
    this.#o = {
      maxManifestBytes: options.maxManifestBytes ?? 4 * 2 ** 20,
      maxFragmentBytes: options.maxFragmentBytes ?? 32 * 2 ** 20,
      timeout: options.timeout ?? 10_000,
      maxRedirects: options.maxRedirects ?? 3,
      backlog: options.backlog ?? 30,
      clock: options.clock ?? Date,
      fetch: options.fetch ?? ((url, init) => fetch(url, init)),
    };
    point.on('state', this.#onState);
    this.#update();
  }

  /** The upstream publishing points, in failover order. */
  get sources(): readonly string[] {
    return this.#sources;
  }

  /** Changes the upstreams (the definition changed); a run in progress goes on with the new list. */
  setSources(sources: readonly string[]): void {
    if (sources.join('\n') === this.#sources.join('\n')) return;
    this.#sources = sources;
    this.#current = 0;
  }

  /** Stops pulling for good (the point goes away or stops being pulled). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#point.off('state', this.#onState);
    this.#stop();
    this.#point.reportSource(undefined);
  }

  /** Pulls while the point is Starting or Started; stops otherwise. */
  #update(): void {
    const active = !this.#closed && (this.#point.state === 'Starting' || this.#point.state === 'Started');
    if (active && !this.#run) {
      const run = new AbortController();
      this.#run = run;
      this.#report('connecting', undefined);
      void this.#follow(run.signal).catch((err: unknown) => this.#crashed(err));
    } else if (!active && !this.#closed) {
      if (this.#run) this.#stop();
      // Each state on the way (Stopping, then Stopped) is shown; an ended upstream stays `ended`.
      if (this.#point.source?.state !== 'ended' || this.#point.state === 'Idle') this.#report('waiting', `the point is ${this.#point.state}`);
    }
  }

  #stop(): void {
    this.#run?.abort();
    this.#run = undefined;
    // The point disconnects its encoders itself when it stops; a session still open goes quietly.
    this.#feeding?.abort();
    this.#feeding = undefined;
    this.#session?.finish();
    this.#session = undefined;
    this.#header = undefined;
    this.#tracks.clear();
  }

  /** A bug must not leave the point silently unfed: it is reported, and pulling starts over. */
  #crashed(err: unknown): void {
    debug('%s: puller failed: %O', this.#point.path, err);
    this.#report('failing', `internal error: ${(err as Error)?.message ?? String(err)}`);
    this.#stop();
    if (!this.#closed) setTimeout(() => this.#update(), MAX_BACKOFF).unref();
  }

  #report(state: SourceStatus['state'], reason: string | undefined): void {
    const upstream = this.#sources[this.#current] ?? '';
    const skipped = this.#skipped.length > 0 ? `not pulled: ${this.#skipped.join('; ')}` : undefined;
    this.#point.reportSource({ state, upstream, reason: reason ?? skipped, since: this.#o.clock.now() });
  }

  /** The manifest loop: reads the manifest, keeps the track loops running, ends the stream at the end. */
  async #follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const at = this.#current;
      let manifest: UpstreamManifest;
      try {
        const body = await this.#get(`${this.#sources[at]}/Manifest`, this.#o.maxManifestBytes, signal);
        if (signal.aborted) return;
        if (body.status !== 200) throw new UpstreamFailure(`upstream ${body.status} for the manifest`);
        manifest = parseUpstreamManifest(body.bytes.toString('utf8'));
      } catch (err) {
        if (signal.aborted) return;
        await this.#failed(at, err, signal);
        continue;
      }
      await this.#sync(manifest, signal);
      if (!manifest.isLive && this.#caughtUp(manifest)) {
        this.#end();
        return;
      }
      await sleep(MANIFEST_INTERVAL, signal);
    }
  }

  /** Every track holds the last fragment a finished upstream lists. */
  #caughtUp(m: UpstreamManifest): boolean {
    for (const t of this.#tracks.values()) {
      const last = t.stream.fragments[t.stream.fragments.length - 1];
      if (last && (t.held === undefined || t.held < last.time)) return false;
    }
    return this.#tracks.size > 0 || m.streams.length === 0;
  }

  /** The upstream's presentation ended: end of stream for the point (it goes to Stopped). */
  #end(): void {
    if (!this.#session && this.#point.source?.state === 'ended') return;
    this.#run?.abort();
    this.#run = undefined;
    debug('%s: upstream presentation ended', this.#point.path);
    const session = this.#session;
    this.#session = undefined;
    // Reported first: the end of stream moves the point to Stopped at once, and that is why.
    this.#report('ended', 'the upstream presentation ended');
    try {
      session?.write(emptyMfra());
      // As an encoder's POST ends after its mfra: the session closes and gives back its ingest connection.
      session?.finish();
    } catch (err) {
      // the point refused it: it is no longer taking this stream anyway
      session?.abort('error', isSmoothError(err) ? err : undefined);
    }
    // A later run (the point started again) begins afresh, as after a stop.
    this.#header = undefined;
    this.#tracks.clear();
  }

  /**
   * Adopts a manifest: a new track set (or a closed session) opens a session whose header describes
   * it, then each track's loop runs.
   */
  async #sync(m: UpstreamManifest, signal: AbortSignal): Promise<void> {
    const wanted: Array<{ stream: UpstreamStream; info: TrackInfo }> = [];
    const skipped: string[] = [];
    for (const stream of m.streams) {
      for (const info of stream.tracks) {
        try {
          synthesizeTrack(info, 1); // only to know now whether it can be described
          wanted.push({ stream, info });
        } catch (err) {
          skipped.push(isSmoothError(err) ? err.message : String(err));
        }
      }
    }
    this.#skipped = skipped;
    if (wanted.length === 0) {
      this.#report('failing', skipped.length > 0 ? `no track can be pulled: ${skipped.join('; ')}` : 'the upstream lists no tracks');
      return;
    }
    const window = this.#point.settings.manifestWindowLength;
    const tracks = wanted.map((w) => {
      let t = this.#tracks.get(trackKey(w.info));
      if (!t) {
        t = { stream: w.stream, info: w.info, trackId: 0, next: undefined, held: undefined, running: false, last: false, ended: false };
        this.#tracks.set(trackKey(w.info), t);
      }
      t.stream = w.stream;
      if (t.next === undefined) t.next = startOf(w.stream, t.held, this.#o.backlog, window);
      return t;
    });
    // A track the upstream no longer lists (or that can no longer be described) is no longer pulled: its
    // loop ends, and the end of the stream no longer waits for it.
    for (const [k, t] of this.#tracks) if (!tracks.includes(t)) this.#tracks.delete(k);
    const key = headerKey(wanted.map((w) => w.info));
    if (key !== this.#header || !this.#session || this.#session.closed) {
      if (!(await this.#open(tracks, key, signal))) return;
    }
    const feeding = this.#feeding!.signal;
    for (const t of tracks) {
      if (t.running || t.ended || t.next === undefined) continue;
      t.running = true;
      void this.#pull(t, feeding)
        .catch((err: unknown) => this.#crashed(err))
        .finally(() => (t.running = false));
    }
  }

  /**
   * Opens the ingest session for `tracks`. Each track's next fragment is fetched first: the header
   * numbers the tracks as the upstream does (its fragments then pass through byte for byte), unless
   * the upstream's ids repeat (a push per track), when they are numbered 1…n.
   * @returns whether the session is open (else the reason is reported, and the next manifest retries)
   */
  async #open(tracks: readonly PulledTrack[], key: string, signal: AbortSignal): Promise<boolean> {
    this.#feeding?.abort();
    this.#feeding = undefined;
    this.#session?.finish();
    this.#session = undefined;
    this.#header = undefined;
    const at = this.#current;
    if (tracks.some((t) => t.next === undefined)) {
      // A started upstream that has no fragment yet: not a failure, nothing to switch away from.
      this.#report('connecting', 'the upstream lists no fragments yet');
      return false;
    }
    const firsts: Array<{ time: bigint; bytes: Buffer }> = [];
    try {
      await Promise.all(
        tracks.map(async (t, i) => {
          const answer = await this.#get(`${this.#sources[at]}/${fragmentPath(t.stream, t.info, t.next!)}`, this.#o.maxFragmentBytes, signal, heldFor(t));
          if (answer.status !== 200) throw new UpstreamFailure(`upstream ${answer.status} for the first fragment of ${trackKey(t.info)}`);
          firsts[i] = { time: t.next!, bytes: answer.bytes };
        }),
      );
    } catch (err) {
      if (!signal.aborted) await this.#failed(at, err, signal);
      return false;
    }
    if (signal.aborted) return false;
    let ids: number[];
    try {
      ids = firsts.map((f) => upstreamTrackId(f.bytes));
    } catch (err) {
      await this.#failed(at, err, signal);
      return false;
    }
    if (new Set(ids).size !== ids.length || ids.some((id) => id === 0)) ids = tracks.map((_, i) => i + 1);
    tracks.forEach((t, i) => (t.trackId = ids[i]!));
    const boxes = tracks.map((t) => synthesizeTrack(t.info, t.trackId));
    const lsm = liveServerManifestBox(
      tracks.map((t) => ({ trackId: t.trackId, info: t.info })),
      undefined,
      'live-smooth pull',
    );
    const moov = makeBox(
      'moov',
      synthesizeMvhd(tracks[0]!.info.timescale, Math.max(...ids) + 1),
      ...boxes.map((b) => b.trak),
      makeBox('mvex', ...boxes.map((b) => b.trex)),
    );
    let session: IngestSession | undefined;
    try {
      session = this.#point.openIngest(STREAM_ID, this.#sources[at], smoothIngest({ maxBoxSize: this.#o.maxFragmentBytes }));
      session.onKill = () => {
        if (this.#session === session) this.#session = undefined;
      };
      session.write(Buffer.concat([smoothFtyp(), lsm, moov]));
    } catch (err) {
      session?.abort('error', isSmoothError(err) ? err : undefined);
      this.#report('failing', `the point refused the pulled stream: ${(err as Error).message}`);
      return false;
    }
    this.#session = session;
    this.#header = key;
    const feeding = new AbortController();
    this.#feeding = feeding;
    // The run's end ends this session's loops (a replaced session's are aborted by the next #open).
    signal.addEventListener('abort', () => feeding.abort(), { once: true, signal: feeding.signal });
    debug('%s: pulling %d tracks from %s', this.#point.path, tracks.length, this.#sources[at]);
    try {
      tracks.forEach((t, i) => {
        t.next = this.#feed(t, firsts[i]!.time, firsts[i]!.bytes);
        t.held = firsts[i]!.time;
      });
    } catch (err) {
      await this.#failed(at, err, signal);
      return false;
    }
    this.#succeeded();
    return true;
  }

  /** The loop of one track: fetch its next fragment, feed it, go on where the upstream says. */
  async #pull(t: PulledTrack, signal: AbortSignal): Promise<void> {
    let poll = MIN_POLL;
    while (!signal.aborted && t.next !== undefined && this.#tracks.get(trackKey(t.info)) === t && this.#session?.closed === false) {
      const at = this.#current;
      const time = t.next;
      let answer: { status: number; bytes: Buffer };
      try {
        answer = await this.#get(`${this.#sources[at]}/${fragmentPath(t.stream, t.info, time)}`, this.#o.maxFragmentBytes, signal, heldFor(t));
      } catch (err) {
        if (signal.aborted) return;
        await this.#failed(at, err, signal);
        continue;
      }
      if (signal.aborted) return;
      if (answer.status === 200) {
        try {
          const next = this.#feed(t, time, answer.bytes);
          t.held = time;
          t.next = next;
        } catch (err) {
          if (signal.aborted || err instanceof SessionClosed) return;
          await this.#failed(at, err, signal);
          continue;
        }
        poll = MIN_POLL;
        this.#succeeded();
      } else if (answer.status === 404 && t.last) {
        // The last fragment said nothing follows, and nothing does: the upstream ended this track.
        this.#succeeded();
        t.ended = true;
        t.next = undefined;
        if ([...this.#tracks.values()].every((x) => x.ended)) this.#end();
        return;
      } else if (answer.status === 412 || (answer.status === 404 && t.held !== undefined && this.#live(t))) {
        // Not there yet (412; some origins say 404 just past the live edge): ask again shortly.
        this.#succeeded();
        await sleep(poll, signal);
        poll = Math.min(MAX_POLL, poll * 2);
        if (answer.status === 404 && poll === MAX_POLL) t.next = resync(t);
      } else if (answer.status === 404 || answer.status === 410) {
        // Not a fragment start, or out of the window: go on from the manifest's next listed fragment.
        this.#succeeded();
        t.next = resync(t);
        if (t.next === undefined || t.next === time) {
          t.next = undefined;
          return; // the manifest loop restarts it once it lists something newer
        }
      } else {
        await this.#failed(at, new UpstreamFailure(`upstream ${answer.status}`), signal);
      }
    }
  }

  /** The upstream still lists fragments past this track's newest (it is live, or was when last read). */
  #live(t: PulledTrack): boolean {
    const last = t.stream.fragments[t.stream.fragments.length - 1];
    return last === undefined || t.held === undefined || last.time <= t.held;
  }

  /**
   * Checks an upstream fragment response (one `moof` with one `traf`, then one `mdat`), renumbers its
   * track, and feeds it to the session.
   * @returns the start of the fragment that follows, as its tfrf announces (else its end)
   */
  #feed(t: PulledTrack, time: bigint, bytes: Buffer): bigint {
    const { start = time, following, last, ...read } = readUpstreamFragment(bytes, t.trackId);
    let duration = read.duration;
    if (start !== time) throw new SmoothError('ERR_BAD_UPSTREAM', `asked for the fragment at ${time}, got the one at ${start}`);
    duration ??= t.stream.fragments.find((f) => f.time === time)?.duration;
    const next = following ?? (duration !== undefined ? time + duration : undefined) ?? resync(t) ?? time + 1n;
    // Else the same fragment would be asked for again and again, each copy dropped by the point.
    if (next <= time) throw new SmoothError('ERR_BAD_UPSTREAM', `the fragment at ${time} announces the next at ${next} (its tfrf or tfxd does not go forward)`);
    const session = this.#session;
    if (!session || session.closed) throw new SessionClosed('the ingest session closed');
    try {
      session.write(bytes);
    } catch (err) {
      session.abort('error', isSmoothError(err) ? err : undefined);
      this.#session = undefined;
      this.#header = undefined;
      throw err;
    }
    t.last = last;
    return next;
  }

  #succeeded(): void {
    if (this.#failures > 0 || this.#point.source?.state !== 'pulling') {
      this.#failures = 0;
      this.#report('pulling', undefined);
    }
  }

  /**
   * Upstream `at` failed: the next one listed takes over (once per failure of the one in use), and after
   * a round of failures the wait before trying again grows.
   */
  async #failed(at: number, err: unknown, signal: AbortSignal): Promise<void> {
    // Box errors come from reading the upstream's bytes; alone ("box 'l>50' overruns its parent") they do not say whose.
    const malformed = isSmoothError(err) && err.code === 'ERR_BAD_BOX' ? 'the upstream sent malformed MP4: ' : '';
    const reason = err instanceof UpstreamFailure || isSmoothError(err) ? malformed + err.message : `upstream unreachable: ${describe(err)}`;
    if (at === this.#current) {
      this.#failures++;
      debug('%s: %s: %s', this.#point.path, this.#sources[at], reason);
      this.#report('failing', reason);
      if (this.#sources.length > 1) this.#current = (at + 1) % this.#sources.length;
    }
    if (this.#failures >= this.#sources.length) {
      const rounds = Math.floor(this.#failures / this.#sources.length);
      await sleep(Math.min(MAX_BACKOFF, MIN_BACKOFF * 2 ** (rounds - 1)), signal);
    }
  }

  /**
   * GETs `url` (following at most `maxRedirects` redirects), reading at most `max` bytes.
   * @throws UpstreamFailure for a timeout, a body over `max` or too many redirects; network errors as they come
   */
  async #get(url: string, max: number, signal: AbortSignal, extraTimeout = 0): Promise<UpstreamAnswer> {
    return getCapped(this.#o.fetch, url, { max, signal, timeout: Math.ceil(this.#o.timeout + extraTimeout), maxRedirects: this.#o.maxRedirects });
  }

}
