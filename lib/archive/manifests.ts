/**
 * The manifests of an archived presentation: the `.ism` server manifest (written as soon as a track
 * joins, so a presentation being written can be found) and, once it is done, the `.ismc` and the
 * `timeShift` that serves it from 0. Each file through a temporary name and a rename, never half
 * written.
 *
 * Sparse tracks (captions, ad markers) are `<textstream>`s in the `.ism` with every param that
 * describes them (`parentTrackName`, `manifestOutput`, `Scheme`, `Subtype`, language), and text
 * StreamIndexes in the `.ismc` with their `ParentStreamIndex` and, where `ManifestOutput` asks, their
 * samples in `<f>`.
 */
import * as path from 'node:path';
import { replaceFile } from '../files';
import { renderSmil, trackParams } from '../ismv/lsm';
import { onDemandSnapshot, shiftedFragment } from '../manifest/ondemand';
import type { ManifestFormatter } from '../manifest/types';
import type { FragmentTime, TrackInfo } from '../model';
import { CMAF_TRACK_ID } from '../mp4/init';

/** 10 MHz: the unit of the `.ism`'s `timeShift`. */
const ROOT_TIMESCALE = 10_000_000n;

/** An archived track as the manifests name it: its description, its file, and (when done) its fragments. */
export interface ManifestTrack {
  info: TrackInfo;
  /** The media file's name in the presentation's folder. */
  src: string;
  /** With their `payload` where a `manifestOutput` track's `.ismc` carries it. */
  fragments: readonly FragmentTime[];
}

/**
 * The whole 10 MHz ticks to subtract from the times of a finished presentation so that it starts at 0
 * (Shaka Player 4 plays on-demand Smooth only from 0; a segment of a live event starts where the event
 * was): its earliest media fragment start, rounded down to whole seconds when that is not a whole
 * number of ticks in every track's timescale. The files keep the live times; the on-demand server
 * applies it. A sparse event before the media (it arrived ahead of it) does not move the start: it is
 * listed from 0, or left out when it ended before.
 */
function startShift(tracks: readonly ManifestTrack[]): bigint {
  let shift: bigint | undefined;
  for (const t of tracks) {
    if (t.info.parent !== undefined) continue;
    const first = t.fragments[0];
    if (!first) continue;
    const at = (first.time * ROOT_TIMESCALE) / BigInt(t.info.timescale);
    if (shift === undefined || at < shift) shift = at;
  }
  if (shift === undefined) return 0n;
  const exact = tracks.every((t) => (shift! * BigInt(t.info.timescale)) % ROOT_TIMESCALE === 0n);
  return exact ? shift : (shift / ROOT_TIMESCALE) * ROOT_TIMESCALE;
}

/**
 * Writes a presentation's `.ism` and, given the formatter (the presentation is done), its `.ismc` and
 * its `timeShift` (see {@link startShift}): the `.ismc` lists the shifted times, as the on-demand
 * server serves them. Each file through a temporary name and a rename, never half written.
 */
export async function writeManifests(folder: string, name: string, tracks: readonly ManifestTrack[], formatter: ManifestFormatter | undefined): Promise<void> {
  const shift = formatter ? startShift(tracks) : 0n;
  const metas: Array<[string, string]> = [['clientManifestRelativePath', `${name}.ismc`]];
  if (shift > 0n) metas.push(['timeShift', String(shift)]);
  const ism = renderSmil(
    tracks.map((t) => ({ type: t.info.type, trackId: CMAF_TRACK_ID, bitrate: t.info.bitrate, language: t.info.language, src: t.src, params: trackParams(t.info) })),
    metas,
  );
  if (formatter) {
    const shifted = tracks.map((t) => {
      const by = (shift * BigInt(t.info.timescale)) / ROOT_TIMESCALE;
      const sparse = t.info.parent !== undefined;
      const fragments: FragmentTime[] = [];
      for (const f of t.fragments) {
        const at = shiftedFragment(f.time, f.duration, by, sparse);
        if (at) fragments.push(f.payload ? { ...at, payload: f.payload } : at);
      }
      return { info: t.info, fragments };
    });
    // The .ismc first: a reader that sees the finished .ism finds its client manifest.
    await replaceFile(path.join(folder, `${name}.ismc`), formatter.render(onDemandSnapshot(shifted)));
  }
  await replaceFile(path.join(folder, `${name}.ism`), ism);
}
