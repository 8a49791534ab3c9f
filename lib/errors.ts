/**
 * Errors raised by the media core. They carry a stable `code` and no HTTP status: the HTTP edge maps
 * codes to statuses in one table (`http/status.ts`).
 */

/** Every stable error code the library raises. Codes are never reused for another meaning. */
export type SmoothErrorCode =
  /** A box header or payload is malformed (size too small, truncated, overruns its parent). */
  | 'ERR_BAD_BOX'
  /** A box is larger than the `maxBoxSize` option allows. */
  | 'ERR_BOX_TOO_LARGE'
  /** The ingest stream did not start with the header boxes (ftyp, Live Server Manifest box, moov). */
  | 'ERR_BAD_HEADER'
  /** A track uses a codec (FourCC or sample entry) this server does not know how to describe. */
  | 'ERR_UNKNOWN_CODEC'
  /** A reconnecting stream described a known track differently than before. */
  | 'ERR_HEADER_CHANGED'
  /** A fragment is malformed or inconsistent with the stream header. */
  | 'ERR_BAD_FRAGMENT'
  /** The ingest input ended in the middle of a box. */
  | 'ERR_TRUNCATED'
  /** The request URL is malformed. */
  | 'ERR_BAD_URL'
  /** The request URL tries to leave the media root. */
  | 'ERR_TRAVERSAL'
  /** The publishing point definition (`.isml`) cannot be read. */
  | 'ERR_BAD_DEFINITION'
  /** The publishing point does not accept encoders in its current state. */
  | 'ERR_POINT_STATE'
  /** A host middleware consumed the ingest body before this library saw it. */
  | 'ERR_BODY_CONSUMED'
  /** A restarted encoder (times back beyond the resend window) on a point with `encoderRestart=refuse`. */
  | 'ERR_ENCODER_RESTART'
  /** A redundant encoder fell behind the encoder feeding the same tracks and is not catching up. */
  | 'ERR_ENCODER_BEHIND'
  /** A fragment starts far past its track's newest fragment and the wall time since (a wrong or hostile clock). */
  | 'ERR_TIME_JUMP'
  /** An ingest request presented no valid credentials (a token or HTTP Basic user of `ingestAuth`). */
  | 'ERR_UNAUTHORIZED'
  /** An ingest request is not allowed from its address, or the `ingestAuth.authorize` hook refused it. */
  | 'ERR_FORBIDDEN'
  /** A stream would feed tracks (or a stream id) that a live connection with other credentials feeds. */
  | 'ERR_TRACK_TAKEN'
  /** The origin or the point already has as many ingest connections as it takes (`maxIngestConnections…`). */
  | 'ERR_TOO_MANY_CONNECTIONS'
  /** The origin's byte budget (`maxBytes`) cannot hold more of an ingest box now, even after shedding old fragments. */
  | 'ERR_BUDGET_EXCEEDED'
  /** The encoder sent nothing for longer than the idle-ingest timeout. */
  | 'ERR_INGEST_IDLE'
  /** The edge cache got no usable answer from any upstream: network errors, 5xx, malformed answers (some may have timed out). */
  | 'ERR_UPSTREAM_FAILED'
  /** The edge cache's upstream requests all timed out. */
  | 'ERR_UPSTREAM_TIMEOUT'
  /** The edge cache has `maxUpstreamRequests` upstream requests in flight, or is closed. */
  | 'ERR_EDGE_BUSY'
  /** An option passed to the library is invalid. */
  | 'ERR_INVALID_OPTION'
  /** The fragment store failed to read a fragment (the cause is reported, not sent to the client). */
  | 'ERR_STORE'
  /** An encoder pushed to a publishing point that does not exist. */
  | 'ERR_NO_POINT'
  /** A CMAF upload (one segment per request) names a path that no posted MPD's `SegmentTemplate` names. */
  | 'ERR_UNKNOWN_PATH'
  /** A CMAF media segment arrived for a representation whose init segment (CMAF header) is missing. */
  | 'ERR_NO_INIT'
  /** A CMAF header is not one the point takes: no `moov`, more than one track, or a handler or codec it cannot serve. */
  | 'ERR_UNSUPPORTED_MEDIA'
  /** A pulled point's upstream answered with something that is not a valid manifest or fragment. */
  | 'ERR_BAD_UPSTREAM';

/** Base class of every error the library raises; match on `code`, not on the message. */
export class SmoothError extends Error {
  /** Stable machine-readable code. */
  readonly code: SmoothErrorCode;

  /**
   * @param code - stable code, see {@link SmoothErrorCode}
   * @param message - short human-readable reason, safe to send to the peer
   */
  constructor(code: SmoothErrorCode, message: string) {
    super(message);
    this.name = 'SmoothError';
    this.code = code;
  }
}

/** True when `err` is a {@link SmoothError} (also across duplicated copies of the package). */
export function isSmoothError(err: unknown): err is SmoothError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && err.name === 'SmoothError';
}

// The simulated encoder's errors live here with the server's because reading Smooth files (lib/ismv),
// which the encoder, the archive and the on-demand server share, raises them for bad input files.
// They are not SmoothErrors: those map to HTTP statuses; these are about an input file or a server.

/** Stable codes of {@link EncoderError}. */
export type EncoderErrorCode =
  /** An input file cannot be used: unreadable, not MP4, not fragmented, no tracks, truncated, bad `.ism`. */
  | 'ERR_ENCODER_INPUT'
  /** The server refused the stream with a status that retrying cannot change (400, 401, 403, 405, 413). */
  | 'ERR_ENCODER_REJECTED'
  /** The connection could not be re-established within `reconnect.maxAttempts`. */
  | 'ERR_ENCODER_GAVE_UP';

/** An error of the simulated encoder; `file` names the input file for `ERR_ENCODER_INPUT`. */
export class EncoderError extends Error {
  /** Stable machine-readable code. */
  readonly code: EncoderErrorCode;
  /** The input file concerned, when there is one. */
  readonly file: string | undefined;
  /** The HTTP status the server answered, for `ERR_ENCODER_REJECTED`. */
  readonly status: number | undefined;

  /**
   * @param code - see {@link EncoderErrorCode}
   * @param message - human-readable; starts with the file name for input errors
   */
  constructor(code: EncoderErrorCode, message: string, details: { file?: string; status?: number } = {}) {
    super(message);
    this.name = 'EncoderError';
    this.code = code;
    this.file = details.file;
    this.status = details.status;
  }
}

/**
 * A failed `fetch` as one short phrase (`connection refused`, `ECONNRESET`, `other side closed`…):
 * undici puts the reason in the error's `cause`.
 */
export function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code && typeof cause?.message === 'string' && !cause.message.includes(code)) return `${code}: ${cause.message}`;
  if (code) return code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
