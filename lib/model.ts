/**
 * Plain data types shared by the media core and the HTTP edge.
 */

/** Kind of a track, as the StreamIndex `Type` of the client manifest. */
export type TrackType = 'video' | 'audio' | 'text';

/** Everything the client manifest says about one track (one QualityLevel). */
export interface TrackInfo {
  type: TrackType;
  /** `trackName`: the StreamIndex `Name` and the noun in `Fragments(<name>=<t>)`. Validated identifier. */
  name: string;
  /** Bits per second; the value of `QualityLevels(<bitrate>)`. */
  bitrate: number;
  /** Custom attributes that tell apart tracks of equal name and bitrate, as `[name, value]` pairs. */
  customAttributes: ReadonlyArray<readonly [string, string]>;
  fourCC: string;
  /** Hex string, upper case. */
  codecPrivateData: string;
  /** Track timescale (ticks per second); fragment times use it. */
  timescale: number;
  /** StreamIndex `Subtype` (empty for audio/video unless the encoder names one). */
  subtype: string;
  /** RFC 1766 / ISO 639 language, when the encoder gives one other than `und`. */
  language: string | undefined;
  maxWidth?: number;
  maxHeight?: number;
  displayWidth?: number;
  displayHeight?: number;
  nalUnitLengthField?: number;
  audioTag?: number;
  channels?: number;
  samplingRate?: number;
  bitsPerSample?: number;
  packetSize?: number;
  /**
   * `parentTrackName` of a sparse track (captions, ad markers): the StreamIndex whose timeline it
   * follows. A sparse fragment is listed once the parent lists a fragment that starts at or after it.
   */
  parent?: string;
  /** `manifestOutput`: the client manifest carries each fragment's sample (`<f>`, base64). */
  manifestOutput?: boolean;
  /** `Scheme` of a sparse data track, e.g. `urn:scte:scte35:2013:bin` for SCTE-35 splice messages. */
  scheme?: string;
}

/** `Scheme` of SCTE-35 splice messages in a sparse track (Azure Media Services' timed metadata). */
export const SCTE35_SCHEME = 'urn:scte:scte35:2013:bin';

/**
 * Largest sample a `manifestOutput` sparse fragment carries into a client manifest (`<f>`), live or on
 * demand (an SCTE-35 splice message is well below it): a larger one is listed without it, and clients
 * fetch it.
 */
export const MANIFEST_OUTPUT_MAX = 512;

/** Start and duration of one fragment, in its track's timescale. */
export interface FragmentTime {
  readonly time: bigint;
  readonly duration: bigint;
  /**
   * In a listing of a `manifestOutput` sparse track: the fragment's sample bytes, which the client
   * manifest carries (`<f>`).
   */
  readonly payload?: Uint8Array;
}

/**
 * The identity of a track across streams and reconnects: type, name, bitrate and custom attributes
 * (protocol doc §2.11), not the stream id nor the per-bitstream trackID.
 */
export function trackKey(t: Pick<TrackInfo, 'type' | 'name' | 'bitrate' | 'customAttributes'>): string {
  const attrs = t.customAttributes.map(([k, v]) => `,${k}=${v}`).join('');
  return `${t.type}/${t.name}/${t.bitrate}${attrs}`;
}

/** Identifier grammar of StreamIndex names and custom attributes: `ALPHA *(ALPHA / DIGIT / "_" / "-")`. */
export const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
