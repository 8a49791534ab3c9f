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
  /** An option passed to the library is invalid. */
  | 'ERR_INVALID_OPTION'
  /** The fragment store failed to read a fragment (the cause is reported, not sent to the client). */
  | 'ERR_STORE';

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
