/**
 * The snapshot of an on-demand presentation's client manifest (a live archive's `.ismc`, or one built
 * from `.ismv`/`.isma` files): StreamIndexes as a live point forms them.
 */
import type { FragmentTime, TrackInfo, TrackType } from '../model';
import type { ManifestSnapshot, StreamSnapshot } from './types';

/** Root timescale of the manifest `Duration`. */
const ROOT_TIMESCALE = 10_000_000n;
const TYPE_ORDER: Record<TrackType, number> = { video: 0, audio: 1, text: 2 };

/** A track of an on-demand presentation: its description and the fragments it lists, oldest first. */
export interface ListedTrack {
  readonly info: TrackInfo;
  readonly fragments: readonly FragmentTime[];
}

/**
 * StreamIndexes by type and name (video, audio, text), QualityLevels by ascending bitrate, each listing
 * its first QualityLevel's fragments (IIS requires the QualityLevels of a StreamIndex to be aligned);
 * `Duration` from the earliest start to the latest end, in 100-ns units.
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
  let start: bigint | undefined;
  let end = 0n;
  const streams: StreamSnapshot[] = groups.map((g) => {
    g.sort((a, b) => a.info.bitrate - b.info.bitrate);
    const info = g[0]!.info;
    const listed = g[0]!.fragments;
    const first = listed[0];
    const last = listed[listed.length - 1];
    if (first && last) {
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
      qualityLevels: g.map((t) => t.info),
      fragments: listed,
    };
  });
  return { isLive: false, timeScale: Number(ROOT_TIMESCALE), duration: end - (start ?? 0n), lookahead: 0, dvrWindowLength: 0n, streams };
}
