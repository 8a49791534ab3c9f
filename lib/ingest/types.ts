/**
 * The ingest contract: an ingest module turns the body of one ingest request, received in arbitrary
 * chunks, into format-neutral track headers and fragments. Smooth Streaming ingest is the default
 * (`smooth.ts`); CMAF ingest (`Streams(<name>.cmfv|cmfa)`) is the same parser in its CMAF mode
 * (`cmafIngest`), chosen by the stream name whatever the `ingest` option says.
 */
import type { TrackHeader } from '../media';
import type { Trex } from '../mp4/boxes';
import type { ParsedFragment } from './fragment';

/** One track of an ingest stream: its header (description and init segment) and its fragment defaults. */
export interface IngestTrack extends TrackHeader {
  /** Defaults for trun fields absent from tfhd/trun, from the stream's `mvex/trex`. */
  readonly trex: Trex | undefined;
}

/** What an ingest parser reports, in stream order. */
export type IngestEvent =
  /**
   * The header boxes were read: the stream's tracks, and the raw header boxes (own copies); `skipped`
   * says why tracks it describes are left out (their fragments are read past).
   */
  | { type: 'header'; tracks: IngestTrack[]; boxes: Buffer; skipped?: string[] }
  /** One track's fragment; its sample bytes are views into the parser's input until committed. */
  | { type: 'fragment'; fragment: ParsedFragment }
  /** End of stream: a top-level `mfra` arrived. */
  | { type: 'end' };

/**
 * An ingest module's parser for one request body. Any split of the same bytes must give the same
 * events. Errors are thrown as `SmoothError`s; after one, the parser is not used again.
 */
export interface IngestParser {
  /** Consumes one chunk and returns the events it completed. */
  push(chunk: Buffer): IngestEvent[];
  /** The body ended; returns final events or throws `ERR_TRUNCATED`. */
  end(): IngestEvent[];
  /**
   * Bytes of input held for boxes not complete yet, counted in the origin's byte budget. A module
   * without it is not counted beyond `maxBoxSize` per connection.
   */
  readonly buffered?: number;
}

/** Creates an {@link IngestParser} for one request; passed as the `ingest` option to replace the default. */
export type IngestParserFactory = (options: { maxBoxSize: number }) => IngestParser;
