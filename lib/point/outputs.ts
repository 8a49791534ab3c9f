/**
 * The DASH and HLS views of a point's content: the session's anchor, the listing of each StreamIndex on
 * the output timeline with its HLS sequence numbers, and the MPD and playlists rendered from it once per
 * change of the timeline (never per request). The segments themselves are the content's (`cmafSegment`).
 *
 * Sparse StreamIndexes: TTML captions are a text track like the media ones (listed up to their parent's
 * edge), with HLS playlists of their own numbering whose holes are `EXT-X-GAP` entries; SCTE-35 ad
 * markers are no track but events (an MPD EventStream, HLS date ranges); other sparse tracks are left
 * out, as no DASH or HLS player would know what to do with them.
 */
import type { PointSettings } from '../definition';
import { codecsOf } from '../manifest/codecs';
import { renderMpd } from '../manifest/dash';
import { renderMaster, renderMedia } from '../manifest/hls';
import {
  OutputEventStream,
  OutputGroup,
  OutputRepresentation,
  OutputSnapshot,
  PlaylistEntry,
  TIME_URL_PLACEHOLDER,
  TextRole,
  representationId,
} from '../manifest/output';
import { readMarkerSample } from '../manifest/scte35';
import { type FragmentTime, SCTE35_SCHEME, type TrackInfo } from '../model';
import { Anchor, anchorFits, chooseAnchor } from './anchor';
import { contentTag, liveMaxAge } from './etag';
import { listGroups, parentOf, rescale } from './listing';
import type { Group, Track, TrackRegistry } from './tracks';

/** A rendered DASH or HLS manifest (the same shape as the Smooth one). */
export interface RenderedOutput {
  body: Buffer;
  contentType: string;
  etag: string;
  lastModified: number;
  maxAge: number;
  /**
   * Where {@link TIME_URL_PLACEHOLDER} stands in `body` (an MPD's UTCTiming), or −1: found once per
   * rendering, so that each response writes the parts around it without searching or copying.
   */
  timeAt: number;
}

/** What the outputs need of the content. */
export interface OutputsHost {
  readonly tracks: TrackRegistry;
  settings(): PointSettings;
  /** More fragments may come (the point is Started). */
  live(): boolean;
  /** Wall-clock ms of the last change of the timeline. */
  changedAt(): number;
  /** Wall-clock ms now. */
  now(): number;
}

/** What HLS numbering remembers of a StreamIndex between listings. */
interface Sequence {
  /** The listing it last numbered (stored times), oldest first. */
  listing: readonly FragmentTime[];
  mediaSequence: number;
  discontinuitySequence: number;
  targetDuration: number;
}

/** Content-Type of the MPD (ISO/IEC 23009-1 Annex C). */
const MPD_TYPE = 'application/dash+xml';
/** Content-Type of HLS playlists (RFC 8216 §4). */
const M3U8_TYPE = 'application/vnd.apple.mpegurl';

/** Whether `b` does not start where `a` ends. */
const gap = (a: FragmentTime, b: FragmentTime): boolean => a.time + a.duration !== b.time;

/** Whether a track carries TTML documents (captions or subtitles), sparse or not. */
export function isTtml(info: Pick<TrackInfo, 'type' | 'fourCC'>): boolean {
  return info.type === 'text' && info.fourCC.toUpperCase() === 'TTML';
}

/** The DASH Role of a TTML StreamIndex from its Smooth `Subtype`: CAPT captions, DESC descriptions, else subtitles. */
function textRole(subtype: string): TextRole {
  const s = subtype.toUpperCase();
  return s === 'CAPT' ? 'caption' : s === 'DESC' ? 'description' : 'subtitle';
}

/** What a StreamIndex becomes in DASH and HLS. */
function outputKind(g: Group): 'media' | 'text' | 'markers' | undefined {
  const info = g.tracks[0]?.info;
  if (!info) return undefined;
  if (g.parent !== undefined && info.scheme === SCTE35_SCHEME) return 'markers';
  if (isTtml(info)) return 'text';
  // Other sparse tracks (timed metadata of other schemes) have no form players read.
  return g.parent === undefined ? 'media' : undefined;
}

/**
 * The HLS entries of a sparse StreamIndex's listing: its fragments, with every hole between two filled
 * by `EXT-X-GAP` entries that end at its parent's segment starts (so no entry outlasts the parent's
 * target duration, and the same hole always splits the same way), and a discontinuity wherever the
 * parent has one, so that players number the sparse playlist's discontinuities as the parent's.
 * @param parent - the parent's listing, in this StreamIndex's timescale
 * @param breaks - starts of the parent's segments that follow a discontinuity, in this timescale
 */
export function sparsePlaylist(listing: readonly FragmentTime[], parent: readonly FragmentTime[], breaks: readonly bigint[]): PlaylistEntry[] {
  const out: PlaylistEntry[] = [];
  let p = 0;
  let b = 0;
  const push = (e: PlaylistEntry): void => {
    const prev = out[out.length - 1];
    // A parent discontinuity in (previous start, this start]: this entry begins after it.
    while (b < breaks.length && prev && breaks[b]! <= prev.time) b++;
    if (prev && b < breaks.length && breaks[b]! <= e.time) {
      e.discontinuity = true;
      while (b < breaks.length && breaks[b]! <= e.time) b++;
    }
    out.push(e);
  };
  for (const [i, f] of listing.entries()) {
    const prev = listing[i - 1];
    let from = prev ? prev.time + prev.duration : f.time;
    while (from < f.time) {
      while (p < parent.length && parent[p]!.time <= from) p++;
      const to = p < parent.length && parent[p]!.time < f.time ? parent[p]!.time : f.time;
      push({ time: from, duration: to - from, gap: true });
      from = to;
    }
    push({ time: f.time, duration: f.duration });
  }
  return out;
}

/** Index of the entry of `list` (time-ordered) that starts at `time`, or −1. */
function indexOf(list: readonly FragmentTime[], time: bigint): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.time < time) lo = mid + 1;
    else hi = mid;
  }
  return lo < list.length && list[lo]!.time === time ? lo : -1;
}

/** The DASH/HLS state and renderings of one point's session. */
export class PointOutputs {
  readonly #host: OutputsHost;
  #anchor: Anchor | undefined;
  /** An anchor from the state file, taken for the session if its first fragment fits it. */
  #saved: Anchor | undefined;
  #snapshot: OutputSnapshot | undefined;
  readonly #rendered = new Map<string, RenderedOutput>();
  /** Bytes of `#rendered` (read per fragment for the byte budget). */
  #bytes = 0;
  readonly #sequences = new Map<Group, Sequence>();
  /** Measured frames per second of each video track. */
  readonly #frameRates = new Map<Track, number>();
  /** Tracks by representation id (see {@link track}). */
  readonly #byId = new Map<string, Track>();
  /** Longest fragment of each StreamIndex this session, listed or not: the HLS target duration covers it. */
  readonly #longest = new Map<Group, bigint>();

  constructor(host: OutputsHost) {
    this.#host = host;
  }

  /** The session's anchor, once its first fragment arrived. */
  get anchor(): Anchor | undefined {
    return this.#anchor;
  }

  /** An anchor saved by an earlier process, for a session that goes on (see {@link anchorFits}). */
  restore(anchor: Anchor): void {
    if (!this.#anchor) this.#saved = anchor;
  }

  /**
   * A fragment of `track` arrived at `time`, `count` samples over `duration` ticks: the first of the
   * session fixes the anchor; a video track's first gives its frame rate.
   * @returns true when the anchor was fixed now
   */
  arrived(track: Track, time: bigint, duration: bigint, count: number): boolean {
    const end = time + duration;
    if (duration > (this.#longest.get(track.group) ?? 0n)) this.#longest.set(track.group, duration);
    if (track.info.type === 'video' && count > 1 && !this.#frameRates.has(track)) {
      this.#frameRates.set(track, Math.round((count * track.info.timescale * 1000) / Number(duration)) / 1000);
    }
    if (this.#anchor) return false;
    const now = this.#host.now();
    const saved = this.#saved;
    this.#anchor = saved && anchorFits(saved, end, track.info.timescale, now) ? saved : chooseAnchor(time, end, track.info.timescale, now);
    this.#saved = undefined;
    return true;
  }

  /** The timeline changed: renderings are made again when next asked for. */
  invalidate(): void {
    this.#snapshot = undefined;
    this.#rendered.clear();
    this.#bytes = 0;
  }

  /** A new session: a new anchor with its first fragment, numbering from 0. */
  clear(): void {
    this.invalidate();
    this.#anchor = undefined;
    this.#sequences.clear();
    this.#frameRates.clear();
    this.#longest.clear();
    this.#byId.clear();
  }

  /** Bytes of the renderings kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Media seconds the outputs subtract from `track`'s times, in its ticks. */
  offset(track: Track): bigint {
    return (this.#anchor?.base ?? 0n) * BigInt(track.info.timescale);
  }

  /**
   * The track whose representation id is `id`. Asked per segment request: the ids are built once, and
   * again only when tracks came or went (a session only adds them; a new one starts from none).
   */
  track(id: string): Track | undefined {
    const tracks = this.#host.tracks;
    if (this.#byId.size !== tracks.size) {
      this.#byId.clear();
      for (const t of tracks) this.#byId.set(representationId(t.info), t);
    }
    return this.#byId.get(id);
  }

  /** The MPD. */
  mpd(): RenderedOutput {
    return this.#render('mpd', MPD_TYPE, (s) => renderMpd(s))!;
  }

  /** The HLS master playlist. */
  master(): RenderedOutput {
    return this.#render('m3u8', M3U8_TYPE, (s) => renderMaster(s))!;
  }

  /**
   * The HLS media playlist of representation `id`, or `undefined` when the point has no such track. It
   * is the same for every representation of a StreamIndex, so it is rendered once per StreamIndex.
   */
  media(id: string): RenderedOutput | undefined {
    const track = this.track(id);
    if (!track) return undefined;
    const { type, name } = track.group;
    return this.#render(`m3u8:${type}:${name}`, M3U8_TYPE, (s) => {
      // StreamIndexes without a playlist (ad markers) are not in the snapshot's groups.
      const g = s.groups.find((x) => x.type === type && x.name === name);
      return g && renderMedia(s, g);
    });
  }

  #render(key: string, contentType: string, render: (s: OutputSnapshot) => string | undefined): RenderedOutput | undefined {
    const cached = this.#rendered.get(key);
    if (cached) return cached;
    const snapshot = this.snapshot();
    const text = render(snapshot);
    if (text === undefined) return undefined;
    let shortest: number | undefined;
    for (const g of snapshot.groups) {
      if (g.sparse) continue; // a caption may be long: the media decide how often lists change
      const last = g.segments[g.segments.length - 1];
      if (last) shortest = Math.min(shortest ?? Infinity, Number(last.duration) / g.timescale);
    }
    const body = Buffer.from(text, 'utf8');
    const out: RenderedOutput = {
      body,
      timeAt: body.lastIndexOf(TIME_URL_PLACEHOLDER),
      contentType,
      etag: `"${key === 'mpd' ? 'd' : 'h'}${contentTag(body)}"`,
      lastModified: this.#host.changedAt(),
      maxAge: shortest === undefined || snapshot.ended ? 0 : liveMaxAge(shortest),
    };
    this.#rendered.set(key, out);
    this.#bytes += out.body.length;
    return out;
  }

  /** What the outputs show now (built once per change). */
  snapshot(): OutputSnapshot {
    if (this.#snapshot) return this.#snapshot;
    const s = this.#host.settings();
    const groups: OutputGroup[] = [];
    const eventStreams: OutputEventStream[] = [];
    const all = this.#host.tracks.groups;
    const listings = listGroups(all, s.lookaheadChunks, s.manifestWindowLength);
    const base = this.#anchor?.base ?? 0n;
    for (const [i, g] of all.entries()) {
      const kind = outputKind(g);
      if (kind === undefined) continue;
      const listing = listings[i]!;
      const offset = base * BigInt(g.timescale);
      if (kind === 'markers') {
        eventStreams.push({ name: g.name, timescale: g.timescale, events: this.#markers(listing, offset) });
        continue;
      }
      const reps = g.tracks.map(
        (t): OutputRepresentation => ({ id: representationId(t.info), info: t.info, codecs: codecsOf(t.info), frameRate: this.#frameRates.get(t) }),
      );
      const segments = listing.map((f) => ({ time: f.time - offset, duration: f.duration }));
      const out: OutputGroup = {
        type: g.type,
        name: g.name,
        language: g.language,
        timescale: g.timescale,
        representations: reps,
        segments,
        mediaSequence: 0,
        discontinuitySequence: 0,
        discontinuities: new Set(),
        targetDuration: 1,
      };
      if (kind === 'text') out.role = textRole(g.subtype);
      const parent = parentOf(g, all);
      if (g.parent !== undefined && parent) {
        this.#numberSparse(g, out, listing, parent, listings[all.indexOf(parent)]!, offset);
      } else {
        const seq = this.#number(g, listing);
        for (let k = 1; k < listing.length; k++) if (gap(listing[k - 1]!, listing[k]!)) (out.discontinuities as Set<number>).add(k);
        out.mediaSequence = seq.mediaSequence;
        out.discontinuitySequence = seq.discontinuitySequence;
        out.targetDuration = seq.targetDuration;
      }
      groups.push(out);
    }
    this.#snapshot = {
      ended: !this.#host.live(),
      availabilityStart: this.#anchor?.availabilityStart ?? 0,
      liveStart: this.#anchor?.start ?? 0n,
      publishTime: this.#host.changedAt(),
      window: s.manifestWindowLength,
      lookahead: s.lookaheadChunks,
      groups,
    };
    if (eventStreams.length > 0) this.#snapshot.eventStreams = eventStreams;
    return this.#snapshot;
  }

  /** The SCTE-35 events of an ad-marker StreamIndex's listing, on the output timeline. */
  #markers(listing: readonly FragmentTime[], offset: bigint): OutputEventStream['events'] {
    const events: Array<OutputEventStream['events'][number]> = [];
    for (const f of listing) {
      // A sample too large to keep with the listing (see PointContent) is left out, as is one that is no splice.
      const m = f.payload && readMarkerSample(f.payload);
      if (!m) continue;
      events.push({ id: m.id, time: f.time + BigInt(m.delta) - offset, duration: f.duration, message: m.section });
    }
    return events;
  }

  /**
   * A sparse StreamIndex in HLS ({@link sparsePlaylist}): its holes filled, numbered as a listing of its
   * own (entries that left), its discontinuities those of its parent, whose sequence it starts from.
   */
  #numberSparse(
    g: Group,
    out: OutputGroup,
    listing: readonly FragmentTime[],
    parent: Group,
    parentListing: readonly FragmentTime[],
    offset: bigint,
  ): void {
    const scaled = parentListing.map((f) => ({ time: rescale(f.time, parent.timescale, g.timescale), duration: 0n }));
    const parentSeq = this.#sequences.get(parent);
    const breaks: bigint[] = [];
    for (let k = 1; k < parentListing.length; k++) if (gap(parentListing[k - 1]!, parentListing[k]!)) breaks.push(scaled[k]!.time);
    const entries = sparsePlaylist(listing, scaled, breaks);
    let longest = this.#longest.get(g) ?? 0n;
    for (const e of entries) if (e.duration > longest) longest = e.duration;
    this.#longest.set(g, longest);
    const seq = this.#number(g, entries);
    const first = entries[0];
    // Discontinuities of the parent before this playlist's first entry have left it too.
    const before = first === undefined ? 0 : breaks.filter((t) => t <= first.time).length;
    out.mediaSequence = seq.mediaSequence;
    out.discontinuitySequence = (parentSeq?.discontinuitySequence ?? 0) + before;
    out.targetDuration = seq.targetDuration;
    out.sparse = true;
    out.playlist = entries.map((e) => ({ ...e, time: e.time - offset }));
  }

  /**
   * HLS numbering of a StreamIndex's listing: the media sequence grows by the segments that left since
   * the listing it last numbered, the discontinuity sequence by the gaps that left with them. The target
   * duration covers the longest fragment of the session, listed or not, so it never changes once a
   * client saw it (RFC 8216 §6.2.1) unless a longer one comes.
   */
  #number(group: Group, listing: readonly FragmentTime[]): Sequence {
    const before = this.#sequences.get(group);
    let mediaSequence = before?.mediaSequence ?? 0;
    let discontinuitySequence = before?.discontinuitySequence ?? 0;
    if (before && before.listing.length > 0 && listing.length > 0) {
      const old = before.listing;
      let left = indexOf(old, listing[0]!.time);
      // Everything listed before is gone: count it all (segments in between were never seen).
      if (left === -1) left = listing[0]!.time > old[old.length - 1]!.time ? old.length : 0;
      mediaSequence += left;
      // A segment that becomes first loses the tag before it: that discontinuity counts as gone too.
      for (let i = 1; i <= left && i < old.length; i++) if (gap(old[i - 1]!, old[i]!)) discontinuitySequence++;
      if (left === old.length && gap(old[old.length - 1]!, listing[0]!)) discontinuitySequence++;
    }
    const longest = Number(this.#longest.get(group) ?? 0n) / group.timescale;
    const targetDuration = Math.max(before?.targetDuration ?? 1, Math.round(longest));
    const seq: Sequence = { listing, mediaSequence, discontinuitySequence, targetDuration };
    this.#sequences.set(group, seq);
    return seq;
  }
}
