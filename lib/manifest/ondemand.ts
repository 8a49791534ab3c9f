/**
 * The snapshot of an on-demand presentation's client manifest (a live archive's `.ismc`, or one built
 * from `.ismv`/`.isma` files): StreamIndexes as a live point forms them, sparse ones (captions, ad
 * markers) with their parent and, where `ManifestOutput` asks, their samples.
 */
import type { FragmentTime, TrackInfo, TrackType } from '../model';
import type { ManifestSnapshot, StreamSnapshot } from './types';

/** Root timescale of the manifest `Duration`. */
const ROOT_TIMESCALE = 10_000_000n;
const TYPE_ORDER: Record<TrackType, number> = { video: 0, audio: 1, text: 2 };

/** A track of an on-demand presentation: its description and the fragments it lists, oldest first. */
export interface ListedTrack {
  readonly info: TrackInfo;
  /** With their `payload` in a `manifestOutput` sparse track (when the sample is small enough). */
  readonly fragments: readonly FragmentTime[];
}

/**
 * Where a fragment of the files is listed once `shift` ticks come off its time, or `undefined` when it
 * is not listed: URL times are unsigned, so a start below 0 is listed at 0 with its end kept (ffmpeg's
 * AAC priming), and a fragment that ends at or before 0 is left out. A sparse fragment may last 0
 * ticks (an event of unknown duration): it is listed when it starts at 0 or later. The archive's
 * `.ismc` and the on-demand server list by this one rule, so each finds the other's times.
 */
export function shiftedFragment(time: bigint, duration: bigint, shift: bigint, sparse: boolean): FragmentTime | undefined {
  const start = time - shift;
  if (sparse && duration === 0n) return start < 0n ? undefined : { time: start, duration };
  const listed = start < 0n ? 0n : start;
  const length = duration - (listed - start);
  return length > 0n ? { time: listed, duration: length } : undefined;
}

/**
 * StreamIndexes by type and name (video, audio, text), QualityLevels by ascending bitrate. A media
 * StreamIndex lists its first QualityLevel's fragments (IIS requires the QualityLevels of a StreamIndex
 * to be aligned); a sparse one lists every start any of its QualityLevels has, the first to have it
 * winning, as a live point lists it. `Duration` runs from the earliest start to the latest end of the
 * media StreamIndexes (of the sparse ones only when there is no media), in 100-ns units.
 * @throws Error when the tracks of one StreamIndex have different timescales
 */
export function onDemandSnapshot(tracks: readonly ListedTrack[]): ManifestSnapshot {
  const groups: ListedTrack[][] = [];
  for (const t of tracks) {
    const g = groups.find((x) => x[0]!.info.type === t.info.type && x[0]!.info.name === t.info.name);
    if (!g) groups.push([t]);
    else if (g[0]!.info.timescale !== t.info.timescale) throw new Error(`the tracks of StreamIndex ${t.info.name} have different timescales`);
    else g.push(t);
  }
  groups.sort((a, b) => TYPE_ORDER[a[0]!.info.type] - TYPE_ORDER[b[0]!.info.type]);
  const media = groups.some((g) => g[0]!.info.parent === undefined);
  let start: bigint | undefined;
  let end = 0n;
  const streams: StreamSnapshot[] = groups.map((g) => {
    g.sort((a, b) => a.info.bitrate - b.info.bitrate);
    const info = g[0]!.info;
    const sparse = info.parent !== undefined;
    const listed = sparse ? sparseListing(g) : g[0]!.fragments;
    const first = listed[0];
    const last = listed[listed.length - 1];
    // An event after the media's end (a caption that came with the last fragment) makes it no longer.
    if (first && last && (!sparse || !media)) {
      const scale = BigInt(info.timescale);
      const a = (first.time * ROOT_TIMESCALE) / scale;
      const b = ((last.time + last.duration) * ROOT_TIMESCALE) / scale;
      if (start === undefined || a < start) start = a;
      if (b > end) end = b;
    }
    return {
      type: info.type,
      name: info.name,
      subtype: info.subtype,
      timescale: info.timescale,
      language: info.language,
      ...(sparse ? { parent: info.parent, manifestOutput: info.manifestOutput === true } : {}),
      qualityLevels: g.map((t) => t.info),
      fragments: listed,
    };
  });
  return { isLive: false, timeScale: Number(ROOT_TIMESCALE), duration: end - (start ?? 0n), lookahead: 0, dvrWindowLength: 0n, streams };
}

/** Every start of a sparse StreamIndex's QualityLevels, in time order (one QualityLevel: its own list). */
function sparseListing(g: readonly ListedTrack[]): readonly FragmentTime[] {
  if (g.length === 1) return g[0]!.fragments;
  const byTime = new Map<bigint, FragmentTime>();
  for (const t of g) for (const f of t.fragments) if (!byTime.has(f.time)) byTime.set(f.time, f);
  return [...byTime.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
