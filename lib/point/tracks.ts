/**
 * The tracks of a publishing point: registered from ingest headers, grouped into StreamIndexes the way
 * the manifest shows them (by type and name; bitrates ascending), and found again from the names and
 * numbers of a fragment URL.
 */
import { SmoothError } from '../errors';
import type { TrackHeader } from '../media';
import type { TrackInfo, TrackType } from '../model';
import { TrackCounters, TrackStats } from './stats';
import { TrackTimeline } from './timeline';

/** Bounds on what encoders can make a point hold besides fragments. */
const MAX_TRACKS = 64;

/** Tracks of one type and name: one StreamIndex, one timescale. */
export interface Group {
  readonly type: TrackType;
  readonly name: string;
  readonly timescale: number;
  readonly subtype: string;
  readonly language: string | undefined;
  /** A sparse StreamIndex's parent (`ParentStreamIndex`): it is listed up to the parent's edge. */
  readonly parent: string | undefined;
  /** The client manifest carries a sparse StreamIndex's samples (`ManifestOutput`). */
  readonly manifestOutput: boolean;
  /** Ascending bitrate (QualityLevel `Index` order). */
  readonly tracks: Track[];
}

/** One track (one QualityLevel) of a point. */
export interface Track {
  readonly key: string;
  /** The header that first described the track: its description and init segment. */
  readonly header: TrackHeader;
  readonly info: TrackInfo;
  /** Custom attributes as they appear in `QualityLevels(b,<attrs>)`, for lookups. */
  readonly attrs: string;
  readonly group: Group;
  readonly timeline: TrackTimeline;
  readonly stats: TrackCounters;
  /** Connections feeding this track that have not ended it (changed only by the point's attach and release). */
  live: number;
}

const TYPE_ORDER: Record<TrackType, number> = { video: 0, audio: 1, text: 2 };

/** Custom attributes as the lookup key `k=v,k=v`. */
function attributesKey(attributes: ReadonlyArray<readonly [string, string]>): string {
  return attributes.map(([k, v]) => `${k}=${v}`).join(',');
}

function sameDescription(a: TrackInfo, b: TrackInfo): boolean {
  return (
    a.fourCC === b.fourCC &&
    a.codecPrivateData === b.codecPrivateData &&
    a.timescale === b.timescale &&
    a.maxWidth === b.maxWidth &&
    a.maxHeight === b.maxHeight &&
    a.channels === b.channels &&
    a.samplingRate === b.samplingRate &&
    a.parent === b.parent &&
    a.manifestOutput === b.manifestOutput &&
    a.scheme === b.scheme
  );
}

/** The registry of a point's tracks and StreamIndexes. */
export class TrackRegistry {
  readonly #groups: Group[] = [];
  readonly #tracks = new Map<string, Track>();

  /** StreamIndexes in manifest order (video, audio, text). */
  get groups(): readonly Group[] {
    return this.#groups;
  }

  /** Number of tracks. */
  get size(): number {
    return this.#tracks.size;
  }

  /** Every track, in manifest order. */
  *[Symbol.iterator](): IterableIterator<Track> {
    for (const g of this.#groups) yield* g.tracks;
  }

  /** The track with this identity (its `trackKey`). */
  get(key: string): Track | undefined {
    return this.#tracks.get(key);
  }

  /**
   * Checks that the headers of a new ingest stream fit the point, without changing anything.
   * @throws SmoothError ERR_BAD_HEADER (too many tracks, a timescale other than its StreamIndex's),
   *   ERR_HEADER_CHANGED (a known track described differently)
   */
  check(headers: readonly TrackHeader[], streamId: string): void {
    const added = headers.filter((h) => !this.#tracks.has(h.key)).length;
    if (this.#tracks.size + added > MAX_TRACKS) {
      throw new SmoothError('ERR_BAD_HEADER', `a publishing point holds at most ${MAX_TRACKS} tracks`);
    }
    for (const h of headers) {
      const known = this.#tracks.get(h.key);
      if (known && !sameDescription(known.info, h.info)) {
        throw new SmoothError(
          'ERR_HEADER_CHANGED',
          `stream ${streamId} describes track ${known.key} differently than before (codec, timescale or size)`,
        );
      }
      const group = this.#group(h.info);
      if (!known && group && group.parent !== h.info.parent) {
        throw new SmoothError('ERR_BAD_HEADER', `track ${h.key} names another parent than its StreamIndex ${group.name}`);
      }
      if (!known && group && group.timescale !== h.info.timescale) {
        throw new SmoothError(
          'ERR_BAD_HEADER',
          `track ${h.key} has timescale ${h.info.timescale}, but its StreamIndex uses ${group.timescale}`,
        );
      }
    }
  }

  /** The track of `header`, registered now if it is new (the caller ran {@link check}). */
  add(header: TrackHeader): { track: Track; created: boolean } {
    const known = this.#tracks.get(header.key);
    if (known) return { track: known, created: false };
    const info = header.info;
    let group = this.#group(info);
    if (!group) {
      group = {
        type: info.type,
        name: info.name,
        timescale: info.timescale,
        subtype: info.subtype,
        language: info.language,
        parent: info.parent,
        manifestOutput: info.manifestOutput === true,
        tracks: [],
      };
      this.#groups.push(group);
      this.#groups.sort((a, b) => TYPE_ORDER[a.type] - TYPE_ORDER[b.type]);
    }
    const track: Track = {
      key: header.key,
      header,
      info,
      attrs: attributesKey(info.customAttributes),
      group,
      timeline: new TrackTimeline(),
      stats: new TrackCounters(),
      live: 0,
    };
    group.tracks.push(track);
    group.tracks.sort((a, b) => a.info.bitrate - b.info.bitrate);
    this.#tracks.set(header.key, track);
    return { track, created: true };
  }

  /** The track a fragment URL names, or why there is none. */
  find(name: string, bitrate: number, attributes: ReadonlyArray<readonly [string, string]>): Track | { reason: string } {
    const group = this.#groups.find((g) => g.name === name);
    if (!group) return { reason: `no track named ${name}` };
    const attrs = attributes.length === 0 ? '' : attributesKey(attributes);
    const track = group.tracks.find((t) => t.info.bitrate === bitrate && t.attrs === attrs);
    return track ?? { reason: `no quality level ${bitrate} for ${name}` };
  }

  /** Forgets every track (a new session). */
  clear(): void {
    this.#groups.length = 0;
    this.#tracks.clear();
  }

  #group(info: TrackInfo): Group | undefined {
    return this.#groups.find((g) => g.type === info.type && g.name === info.name);
  }
}

/** The statistics of one track. */
export function trackStats(t: Track): TrackStats {
  const last = t.timeline.lastDuration;
  return {
    key: t.key,
    info: t.info,
    incomingBitrate: t.live > 0 ? t.stats.incomingBitrate(last ? Number(last) / t.info.timescale : 0) : 0,
    lastFragmentTime: t.timeline.newest,
    lastFragmentDuration: last,
    lastArrival: t.stats.fragments > 0 ? t.stats.lastArrival : undefined,
    fragments: t.stats.fragments,
    bytes: t.stats.bytes,
    requests: t.stats.requests,
    notFound: t.stats.notFound,
    notYetAvailable: t.stats.notYet,
  };
}
