/**
 * Errors of the simulated encoder. They are not {@link SmoothError}s: those are the server's, and each
 * maps to an HTTP status; these are about the encoder's own input and its server.
 */

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
