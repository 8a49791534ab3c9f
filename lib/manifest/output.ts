/**
 * What the DASH and HLS outputs show of a point at one moment: the Smooth snapshot's StreamIndexes as
 * adaptation sets / renditions, with every time already on the output's timeline (rebased against the
 * session's anchor, so that it stays below 2^53 and exact) and the URLs of each representation's
 * segments. The renderers (`dash.ts`, `hls.ts`) are pure functions of it.
 *
 * URLs, relative to the point (`<name>.isml/`):
 * - `cmaf/<rep>/init.mp4`: the init segment of representation `<rep>`;
 * - `cmaf/<rep>/<t>.m4s`: its media segment that starts at output time `<t>` (the `$Time$` of the MPD);
 * - `cmaf/<rep>/index.m3u8`: its HLS media playlist;
 * - `time`: the wall clock, for DASH `UTCTiming` (`urn:mpeg:dash:utc:http-iso:2014`).
 * `<rep>` is {@link representationId}: `<name>=<bitrate>` plus `,<key>=<value>` per custom attribute.
 */
import type { FragmentTime, TrackInfo, TrackType } from '../model';

/** One track as a DASH Representation / HLS rendition. */
export interface OutputRepresentation {
  /** {@link representationId} of the track: unique in the point, and the `<rep>` of its URLs. */
  id: string;
  info: TrackInfo;
  /** RFC 6381 codecs string (`avc1.64001f`, `mp4a.40.2`), or `undefined` when it cannot be derived. */
  codecs: string | undefined;
  /** Frames per second of a video track, as measured from its fragments (e.g. `25`, `29.97`). */
  frameRate: number | undefined;
}

/** An entry of an HLS media playlist spelled out by {@link OutputGroup.playlist}. */
export interface PlaylistEntry extends FragmentTime {
  /** A hole of a sparse timeline (`EXT-X-GAP`): listed so the playlist stays continuous, never fetched. */
  gap?: boolean;
  /** `EXT-X-DISCONTINUITY` (and a program date-time) before it. */
  discontinuity?: boolean;
}

/** DASH `Role` of a caption or subtitle StreamIndex (`urn:mpeg:dash:role:2011`). */
export type TextRole = 'caption' | 'subtitle' | 'description';

/** One StreamIndex: tracks of one type and name that share one timeline. */
export interface OutputGroup {
  type: TrackType;
  name: string;
  language: string | undefined;
  /** Timescale of the group's times (its tracks' timescale). */
  timescale: number;
  /** In ascending bitrate. */
  representations: readonly OutputRepresentation[];
  /** Listed segments, oldest first, in output time (below 2^53). */
  segments: readonly FragmentTime[];
  /** HLS `EXT-X-MEDIA-SEQUENCE`: the sequence number of `segments[0]`; grows by one per segment that left. */
  mediaSequence: number;
  /** HLS `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that left with the segments after them. */
  discontinuitySequence: number;
  /** Indexes into `segments` of segments that do not start where the one before ended (a gap). */
  discontinuities: ReadonlySet<number>;
  /** HLS `EXT-X-TARGETDURATION` (seconds): at least every segment's duration rounded, and never smaller later. */
  targetDuration: number;
  /**
   * A TTML caption or subtitle StreamIndex: a DASH text AdaptationSet with this `Role`, an HLS
   * `SUBTITLES` rendition.
   */
  role?: TextRole;
  /**
   * It follows a parent StreamIndex (a sparse track): its segments do not bound the presentation (span,
   * update period, presentation delay), which the media tracks make.
   */
  sparse?: boolean;
  /**
   * HLS: the media playlist's entries, when they are not {@link segments} as they are: a sparse
   * track's holes as `EXT-X-GAP` entries and its parent's discontinuities ({@link mediaSequence},
   * {@link discontinuitySequence} and {@link targetDuration} count these).
   */
  playlist?: readonly PlaylistEntry[];
}

/** One SCTE-35 splice message of an ad-marker track. */
export interface OutputEvent {
  /** The message's `id` in Azure's sample format; `undefined` for a bare `splice_info_section`. */
  id: number | undefined;
  /** Output time of the event, in its stream's timescale. */
  time: bigint;
  /** Length of the break in its stream's timescale; 0 when unknown. */
  duration: bigint;
  /** The binary `splice_info_section()`. */
  message: Uint8Array;
}

/** The SCTE-35 splice messages of one ad-marker StreamIndex listed now (an MPD EventStream). */
export interface OutputEventStream {
  name: string;
  timescale: number;
  /** Oldest first. */
  events: readonly OutputEvent[];
}

/** A point as the DASH and HLS outputs show it. */
export interface OutputSnapshot {
  /** No more segments will come (the point stopped): DASH `static`, HLS `EXT-X-ENDLIST`. */
  ended: boolean;
  /** Wall-clock ms of output time 0 (HLS program date-times count from it). */
  availabilityStart: number;
  /**
   * Whole seconds of output time where the live DASH presentation starts (`presentationTimeOffset`, and
   * `availabilityStartTime` = `availabilityStart` + this): the session's first fragment, so that the
   * SegmentTimeline starts at period time 0.
   */
  liveStart: bigint;
  /** Wall-clock ms of the last change of the listing (DASH `publishTime`). */
  publishTime: number;
  /** DVR window in seconds, 0 for the whole event. */
  window: number;
  /** Fragments held back per track before they are listed. */
  lookahead: number;
  groups: readonly OutputGroup[];
  /** SCTE-35 ad markers of the sparse tracks that carry them, while their fragments are listed. */
  eventStreams?: readonly OutputEventStream[];
}

/** Stands for the absolute path of the point's `time` URL in a rendered MPD; the HTTP edge replaces it per request. */
export const TIME_URL_PLACEHOLDER = '@@live-smooth-time-url@@';

/** The `<rep>` of a track's DASH/HLS URLs: `<name>=<bitrate>` and `,<key>=<value>` per custom attribute. */
export function representationId(info: Pick<TrackInfo, 'name' | 'bitrate' | 'customAttributes'>): string {
  return `${info.name}=${info.bitrate}${info.customAttributes.map(([k, v]) => `,${k}=${v}`).join('')}`;
}
