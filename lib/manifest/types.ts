/**
 * The manifest contract: a formatter turns a snapshot of a presentation into a client manifest.
 */
import type { FragmentTime, TrackInfo, TrackType } from '../model';

/** One StreamIndex: tracks of one type and name, sharing one timeline. */
export interface StreamSnapshot {
  type: TrackType;
  name: string;
  subtype: string;
  timescale: number;
  language: string | undefined;
  /** A sparse StreamIndex's parent (`ParentStreamIndex`). */
  parent?: string | undefined;
  /** The sparse StreamIndex's `c` elements carry their samples (`ManifestOutput`, `<f>`). */
  manifestOutput?: boolean;
  /** QualityLevels in `Index` order (ascending bitrate). */
  qualityLevels: readonly TrackInfo[];
  /** Listed fragments, oldest first (with their `payload` in a `manifestOutput` StreamIndex). */
  fragments: readonly FragmentTime[];
}

/** What a manifest shows of a presentation at one moment. */
export interface ManifestSnapshot {
  isLive: boolean;
  /** Root timescale of `Duration` and `DVRWindowLength` (10 000 000). */
  timeScale: number;
  /** `Duration` in root timescale units; 0 for a live event of unknown length. */
  duration: bigint;
  /** `LookAheadFragmentCount`. */
  lookahead: number;
  /** `DVRWindowLength` in root timescale units; 0 = the whole event. */
  dvrWindowLength: bigint;
  streams: readonly StreamSnapshot[];
}

/** A manifest module. `render` runs once per change of the timeline, never per request. */
export interface ManifestFormatter {
  /** Content-Type of the rendered manifest. */
  readonly contentType: string;
  /** Renders the snapshot. Must escape every string that came from an encoder. */
  render(snapshot: ManifestSnapshot): string;
}
