/**
 * CMAF upload to a publishing point (DASH-IF live media ingest, Interface 1, one segment per request,
 * as ffmpeg's `-f dash` sends it): an MPD names each representation's init and media segment paths;
 * an init segment (CMAF header) opens an ingest session for its representation, the media segments
 * that follow, one request each, feed that same session (their chunks joined per segment). A session
 * spans many requests: it ends at `lmsg`, at a DELETE of its init segment or of the MPD, or when the
 * MPD turns `static` (end of stream); without segments for the idle timeout it closes as a dropped
 * connection does, and the next media segment reopens it from the init segment kept.
 *
 * Format-neutral: the transport hands over whole request bodies and opens sessions through
 * {@link UploadHost}.
 */
import { SmoothError, isSmoothError } from '../errors';
import type { TrackType } from '../model';
import { hasBrand, parseMoov } from '../mp4/boxes';
import { emptyMfra } from '../mp4/edit';
import { Box, children, printable } from '../mp4/reader';
import { UploadMpd, UploadRepresentation, checkUploadPath, isMpdPath, matchUploadPath, parseUploadMpd } from './mpd';
import { SegmentJoiner } from './segments';
import { SmoothIngestParser, cmafIngest } from './smooth';
import type { IngestParser } from './types';

/** Bounds on what a point keeps of CMAF uploads. */
export const UPLOAD_LIMITS = {
  /** Bytes of one CMAF header (ffmpeg's are under 1 KB; DRM boxes add a few KB). */
  maxHeaderBytes: 256 << 10,
  /** CMAF headers kept per point, by path (the oldest goes first). */
  maxHeaders: 64,
} as const;

/** What the upload needs of an ingest session (`IngestSession` has it). */
export interface UploadSession {
  /** Who opened it (see `IngestSession.identity`): segments of other credentials may not feed it. */
  readonly identity: string;
  readonly closed: boolean;
  write(chunk: Buffer): void;
  finish(): void;
  abort(reason: 'disconnected' | 'error', err?: SmoothError): void;
  /** Set here: called when the point drops the session. */
  onKill: (() => void) | undefined;
}

/** Who sent an upload request. */
export interface Uploader {
  /** The identity its ingest authorization gave. */
  readonly identity: string;
  readonly remoteAddress: string | undefined;
}

/** What an {@link UploadChannel} needs of its point. */
export interface UploadHost {
  /**
   * Opens an ingest session on the point (`PublishingPoint.openIngest`).
   * @throws SmoothError when the point takes no encoder now
   */
  open(streamId: string, parser: IngestParser, uploader: Uploader): UploadSession;
  /** The largest box an ingest parser takes. */
  readonly maxBoxSize: number;
  /** Ms without segments after which a representation's session closes (0: never). */
  readonly idleTimeout: number;
}

/** What an upload did. */
export type UploadResult =
  /** An MPD was read. */
  | 'manifest'
  /** An init segment (re)opened its representation's session, or was the one it has. */
  | 'init'
  /** A media segment fed its representation's session. */
  | 'media'
  /** A CMAF header at a path no MPD names yet, kept for an MPD to come (ffmpeg uploads its first init segment before its first MPD). */
  | 'held'
  /** An empty body (the DASH-IF ingest's opening request), or a DELETE of a media segment: nothing to do. */
  | 'nothing'
  /** A DELETE ended what the path named. */
  | 'removed';

/** One representation's session. */
interface Feed {
  readonly rep: UploadRepresentation;
  readonly session: UploadSession;
  readonly joiner: SegmentJoiner;
  /** The CMAF header the session started with. */
  readonly init: Buffer;
  idle: ReturnType<typeof setTimeout> | undefined;
}

const unsupported = (message: string): SmoothError => new SmoothError('ERR_UNSUPPORTED_MEDIA', message);

/**
 * Checks a CMAF header (an init segment): `ftyp` and a `moov` of one video or audio track that the
 * ingest parser describes.
 * @param bitrate - the representation's declared bitrate, if known
 * @returns the track's type
 * @throws SmoothError ERR_UNSUPPORTED_MEDIA for no `moov`, media boxes, more than one track, another
 *   handler or an unknown codec; ERR_BAD_BOX, ERR_BAD_HEADER for malformed boxes
 */
export function checkCmafHeader(body: Buffer, maxBoxSize: number, bitrate: number | undefined): TrackType {
  if (body.length > UPLOAD_LIMITS.maxHeaderBytes) throw new SmoothError('ERR_BAD_HEADER', `a CMAF header of ${body.length} bytes exceeds ${UPLOAD_LIMITS.maxHeaderBytes}`);
  let moov: Box | undefined;
  for (const box of children(body)) {
    if (box.type === 'moof' || box.type === 'mdat') throw unsupported('an init segment carries no media (moof, mdat): media segments go to their own paths');
    if (box.type === 'moov') moov = box;
  }
  if (!moov) throw unsupported('not a CMAF header: no moov');
  const { tracks } = parseMoov(moov);
  if (tracks.length !== 1) throw unsupported(`a CMAF header carries one track; this moov has ${tracks.length}`);
  const handler = tracks[0]!.handler;
  const type = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : handler === 'subt' || handler === 'text' ? 'text' : undefined;
  if (!type) throw unsupported(`tracks of handler '${printable(handler)}' are not supported yet (video, audio and text are)`);
  // Without a declared bitrate (no MPD yet) only the rest is checked: the session checks it with the MPD's.
  const probe = new SmoothIngestParser({ maxBoxSize, cmaf: type, bitrate: bitrate ?? 1 });
  try {
    probe.push(body);
    probe.end();
  } catch (err) {
    if (isSmoothError(err) && err.code === 'ERR_UNKNOWN_CODEC') throw unsupported(err.message);
    throw err;
  }
  return type;
}

/** True when `body` reads as a CMAF header (whole boxes, one of them a `moov`). */
function looksLikeHeader(body: Buffer): boolean {
  try {
    for (const box of children(body)) if (box.type === 'moov') return true;
  } catch {
    // not boxes
  }
  return false;
}

/**
 * A media segment's boxes as the session reads them, and whether its `styp` says it is the last (`lmsg`).
 * The `styp` is read here: the parser would end the track after the first chunk of a last segment.
 * @throws SmoothError ERR_BAD_BOX for malformed boxes; ERR_BAD_FRAGMENT for a CMAF header in a media segment
 */
function mediaBoxes(body: Buffer): { parts: Buffer[]; last: boolean } {
  const parts: Buffer[] = [];
  let last = false;
  let from = 0;
  for (const box of children(body)) {
    if (box.type === 'ftyp' || box.type === 'moov') throw new SmoothError('ERR_BAD_FRAGMENT', `a media segment carries '${box.type}': the CMAF header goes to the init segment's path`);
    if (box.type !== 'styp') continue;
    last ||= hasBrand(box, 'lmsg');
    if (box.offset > from) parts.push(body.subarray(from, box.offset));
    from = box.offset + box.data.length;
  }
  if (from < body.length) parts.push(body.subarray(from));
  return { parts, last };
}

/** Two readings of a representation that a running session can go on with. */
function sameRepresentation(a: UploadRepresentation, b: UploadRepresentation): boolean {
  return a.init === b.init && a.media.source === b.media.source && a.bandwidth === b.bandwidth && a.type === b.type && a.language === b.language;
}

/**
 * The CMAF uploads of one publishing point: its MPD, the CMAF headers it was sent, and one ingest
 * session per representation. Everything it keeps is bounded ({@link UPLOAD_LIMITS}, the MPD's
 * `MPD_LIMITS`).
 */
export class UploadChannel {
  readonly #host: UploadHost;
  #mpd: UploadMpd | undefined;
  /** CMAF headers received, by path (insertion order is age). */
  readonly #headers = new Map<string, Buffer>();
  /** Open sessions, by representation id. */
  readonly #feeds = new Map<string, Feed>();
  /** Upload requests being received. */
  #receiving = 0;
  /** The MPD turned static: the sessions end once no request is being received. */
  #ending = false;

  constructor(host: UploadHost) {
    this.#host = host;
  }

  /** The MPD read last, if any. */
  get mpd(): UploadMpd | undefined {
    return this.#mpd;
  }

  /** Representation ids with an open session. */
  get feeding(): string[] {
    return [...this.#feeds.keys()].filter((id) => this.#live(id) !== undefined);
  }

  /**
   * An upload request to this point started: an end of stream the MPD announces waits for the
   * segments still arriving.
   * @returns to call once it is over (answered or dropped); later calls do nothing
   */
  begin(): () => void {
    this.#receiving++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#receiving--;
      this.#settle();
    };
  }

  /**
   * A PUT or POST of `body` at `path` (below the point): an MPD, an init segment or a media segment.
   * @throws SmoothError ERR_UNKNOWN_PATH for a segment at a path no template of the MPD names;
   *   ERR_NO_INIT for a media segment of a representation without an init segment; ERR_UNSUPPORTED_MEDIA
   *   for an init segment the point cannot take; ERR_TRACK_TAKEN for a segment of other credentials
   *   than the session it would feed; a 4xx `SmoothError` for bad input (and whatever the point
   *   refuses the session with)
   */
  put(path: string, body: Buffer, uploader: Uploader): UploadResult {
    checkUploadPath(path);
    if (body.length === 0) return 'nothing';
    if (isMpdPath(path)) {
      this.#manifest(path, body.toString('utf8'));
      return 'manifest';
    }
    const match = this.#mpd && matchUploadPath(this.#mpd, path);
    if (!match) {
      if (!looksLikeHeader(body)) {
        throw new SmoothError('ERR_UNKNOWN_PATH', this.#mpd ? `no SegmentTemplate of the MPD names ${path}` : `no MPD names ${path}: post the MPD first`);
      }
      checkCmafHeader(body, this.#host.maxBoxSize, undefined);
      this.#keep(path, body);
      return 'held';
    }
    if (match.rep.unsupported) throw unsupported(`representation ${match.rep.id}: ${match.rep.unsupported}`);
    const feed = this.#live(match.rep.id);
    if (feed && feed.session.identity !== uploader.identity) {
      throw new SmoothError('ERR_TRACK_TAKEN', `representation ${match.rep.id} is fed by an encoder with other credentials; a reconnect must present the same credentials`);
    }
    if (match.kind === 'init') {
      if (feed?.init.equals(body)) {
        this.#arm(feed); // the header it has, sent again
      } else {
        if (feed) this.#close(feed, 'disconnected');
        this.#open(match.rep, body, uploader);
      }
      this.#keep(path, body);
      return 'init';
    }
    const header = this.#headers.get(match.rep.init);
    if (!feed && !header) throw new SmoothError('ERR_NO_INIT', `representation ${match.rep.id} has no init segment: send ${match.rep.init} first`);
    const { parts, last } = mediaBoxes(body);
    const target = feed ?? this.#open(match.rep, header!, uploader);
    if (parts.length > 0) this.#write(target, parts);
    if (last) this.#end(target);
    return 'media';
  }

  /**
   * A DELETE of `path`: the MPD or an init segment ends its representations' sessions (end of stream)
   * and is forgotten; a media segment is left to the point's own window.
   * @throws SmoothError ERR_UNKNOWN_PATH for a path nothing names
   */
  delete(path: string): UploadResult {
    checkUploadPath(path);
    if (isMpdPath(path)) {
      if (!this.#mpd) throw new SmoothError('ERR_UNKNOWN_PATH', `no MPD at ${path}`);
      for (const feed of [...this.#feeds.values()]) this.#end(feed);
      this.#mpd = undefined;
      return 'removed';
    }
    const match = this.#mpd && matchUploadPath(this.#mpd, path);
    if (match?.kind === 'media') return 'nothing';
    const feed = match && this.#live(match.rep.id);
    if (feed) this.#end(feed);
    if (!this.#headers.delete(path) && !feed) throw new SmoothError('ERR_UNKNOWN_PATH', `nothing was uploaded at ${path}`);
    return 'removed';
  }

  #manifest(path: string, text: string): void {
    const slash = path.lastIndexOf('/');
    const mpd = parseUploadMpd(text, slash === -1 ? '' : path.slice(0, slash));
    const before = this.#mpd;
    this.#mpd = mpd;
    // A representation gone, or now named or described otherwise, is another stream: its session goes.
    for (const feed of [...this.#feeds.values()]) {
      const now = mpd.representations.find((r) => r.id === feed.rep.id);
      if (!now || !sameRepresentation(now, feed.rep)) this.#close(feed, 'disconnected');
    }
    if (!mpd.static) this.#ending = false;
    else if (before && !before.static) {
      this.#ending = true;
      this.#settle();
    }
  }

  #settle(): void {
    if (!this.#ending || this.#receiving > 0) return;
    this.#ending = false;
    for (const feed of [...this.#feeds.values()]) this.#end(feed);
  }

  /** The open session of a representation; one the point closed is forgotten. */
  #live(id: string): Feed | undefined {
    const feed = this.#feeds.get(id);
    if (feed?.session.closed) this.#forget(feed);
    return feed?.session.closed ? undefined : feed;
  }

  #keep(path: string, header: Buffer): void {
    this.#headers.delete(path);
    if (this.#headers.size >= UPLOAD_LIMITS.maxHeaders) this.#headers.delete(this.#headers.keys().next().value!);
    this.#headers.set(path, header);
  }

  #open(rep: UploadRepresentation, init: Buffer, uploader: Uploader): Feed {
    const type = checkCmafHeader(init, this.#host.maxBoxSize, rep.bandwidth);
    if (rep.type !== undefined && rep.type !== type) throw unsupported(`the init segment of representation ${rep.id} is ${type}; the MPD says ${rep.type}`);
    // The StreamIndex is the content type, per language; the stream id says which representation feeds it.
    const name = rep.language === undefined ? type : `${type}_${rep.language.replace(/-/g, '_')}`;
    const streamId = `${name}-${rep.id}.${type === 'video' ? 'cmfv' : type === 'audio' ? 'cmfa' : 'cmft'}`;
    const joiner = new SegmentJoiner(cmafIngest(streamId, { bitrate: rep.bandwidth })({ maxBoxSize: this.#host.maxBoxSize }));
    const session = this.#host.open(streamId, joiner, uploader);
    const feed: Feed = { rep, session, joiner, init, idle: undefined };
    session.onKill = () => this.#forget(feed);
    this.#feeds.set(rep.id, feed);
    this.#write(feed, [init]);
    return feed;
  }

  /** Feeds one segment's boxes; a failure ends the session and is thrown. */
  #write(feed: Feed, parts: readonly Buffer[]): void {
    try {
      feed.joiner.segment(parts.reduce((n, p) => n + p.length, 0));
      for (const p of parts) feed.session.write(p);
    } catch (err) {
      this.#close(feed, 'error', isSmoothError(err) ? err : undefined);
      throw err;
    }
    this.#arm(feed);
  }

  #arm(feed: Feed): void {
    if (this.#host.idleTimeout === 0) return;
    if (feed.idle) {
      feed.idle.refresh();
      return;
    }
    const err = new SmoothError('ERR_INGEST_IDLE', `no segment of representation ${feed.rep.id} within the idle timeout`);
    feed.idle = setTimeout(() => this.#close(feed, 'disconnected', err), this.#host.idleTimeout);
    feed.idle.unref?.();
  }

  /** End of stream for the representation: its session ends and its init segment is forgotten. */
  #end(feed: Feed): void {
    this.#forget(feed);
    this.#headers.delete(feed.rep.init);
    try {
      feed.session.write(emptyMfra());
      feed.session.finish();
    } catch (err) {
      feed.session.abort('error', isSmoothError(err) ? err : undefined);
    }
  }

  /** The session closes as a dropped connection (or a failed one) does: its tracks wait for a reconnect. */
  #close(feed: Feed, reason: 'disconnected' | 'error', err?: SmoothError): void {
    this.#forget(feed);
    feed.session.abort(reason, err);
  }

  #forget(feed: Feed): void {
    clearTimeout(feed.idle);
    feed.idle = undefined;
    if (this.#feeds.get(feed.rep.id) === feed) this.#feeds.delete(feed.rep.id);
  }
}
