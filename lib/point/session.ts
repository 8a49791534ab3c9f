/**
 * One ingest connection: it feeds the body to its ingest parser, attaches the stream's tracks to the
 * point when the header arrives, and turns each parsed fragment into a stored one: the priming clamp
 * (negative start times), de-duplication (first copy wins), the one copy of the samples. It talks to
 * its point only through {@link SessionHost}.
 */
import type { SmoothError } from '../errors';
import { commitFragment } from '../ingest/fragment';
import type { ParsedFragment } from '../ingest/fragment';
import type { IngestParser, IngestTrack } from '../ingest/types';
import type { MediaFragment } from '../media';
import type { Track } from './tracks';

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
  /** The stream sent end of stream. */
  endOfStream(session: IngestSession): void;
  /** The session is over: after end of stream, a disconnect or an error (`err` is reported). */
  closed(session: IngestSession, reason: SessionEnd, err?: SmoothError): void;
  /** Wall-clock ms, for the stored time of fragments. */
  now(): number;
}

/** One ingest POST attached to a point. Created by `PublishingPoint.openIngest`. */
export class IngestSession {
  readonly #host: SessionHost;
  readonly #parser: IngestParser;
  readonly streamId: string;
  readonly remoteAddress: string | undefined;
  #tracks: ReadonlyMap<number, Track> | undefined;
  #eos = false;
  #closed = false;
  /** The point no longer counts this session as feeding its tracks. */
  #released = false;
  /** Set by the transport: closes the underlying connection when the point drops this stream. */
  onKill: (() => void) | undefined;

  /** @internal use `PublishingPoint.openIngest` */
  constructor(host: SessionHost, parser: IngestParser, streamId: string, remoteAddress: string | undefined) {
    this.#host = host;
    this.#parser = parser;
    this.streamId = streamId;
    this.remoteAddress = remoteAddress;
  }

  /** The point's tracks this session feeds, once its header was accepted. */
  get tracks(): ReadonlyMap<number, Track> | undefined {
    return this.#tracks;
  }

  /** The stream sent end of stream (`mfra`). */
  get eos(): boolean {
    return this.#eos;
  }

  /** No more input is taken. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Feeds body bytes. @throws SmoothError on bad input or a refused header; call {@link abort} then. */
  write(chunk: Buffer): void {
    if (this.#closed) return;
    this.#apply(this.#parser.push(chunk));
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
      if (e.type === 'header') this.#host.attach(this, e.tracks);
      else if (e.type === 'fragment') this.#fragment(e.fragment);
      else {
        this.#eos = true;
        this.#host.endOfStream(this);
      }
    }
  }

  #fragment(parsed: ParsedFragment): void {
    // The parser only reports fragments of tracks its header described.
    const track = this.#tracks!.get(parsed.trackId)!;
    let time = parsed.time;
    let duration = parsed.duration;
    if (time < 0n) {
      // AAC priming (ffmpeg starts audio at −213333): manifest times are unsigned, so the first fragment
      // is listed from 0 with its end unchanged; one that ends before 0 carries nothing playable.
      duration += time;
      time = 0n;
      if (duration <= 0n) return;
    }
    // First copy wins: a reconnect resends its last fragments and redundant encoders overlap. Checked
    // before the samples are copied, so a duplicate costs nothing.
    if (!track.timeline.accepts(time)) return;
    this.#host.fragment(track, commitFragment(parsed, { time, duration }, this.#host.now()));
  }
}
