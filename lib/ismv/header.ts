/**
 * The header boxes every ingest POST starts with (MS-SSTR 2.2.7, protocol doc §2.2): `ftyp`, the Live
 * Server Manifest box, `moov`. A reconnecting encoder must send them byte for byte again (§2.10), so a
 * stream's header is built once and kept.
 */
import type { TrackInfo } from '../model';
import { renumberTrak, withTrackId } from '../mp4/edit';
import { synthesizeMvhd } from '../mp4/synth';
import { makeBox } from '../mp4/writer';
import { children } from '../mp4/reader';
import { liveServerManifestBox } from './lsm';
import type { SourceTrack } from './source';

/** `ftyp` as ffmpeg's ismv muxer and the spec write it: major `isml`, minor 1, compatible `piff`, `iso2`. */
export function smoothFtyp(): Buffer {
  const minor = Buffer.alloc(4);
  minor.writeUInt32BE(1);
  return makeBox('ftyp', Buffer.from('isml', 'latin1'), minor, Buffer.from('piffiso2', 'latin1'));
}

/** A `trex` with no defaults, for a file whose moov lacks one (every sample field is then in the trun). */
function emptyTrex(trackId: number): Buffer {
  const body = Buffer.alloc(24);
  body.writeUInt32BE(trackId, 4);
  body.writeUInt32BE(1, 8); // default_sample_description_index
  return makeBox('trex', body);
}

/**
 * The header of one outgoing stream carrying `tracks`, numbered 1…n in that order: `ftyp`, Live Server
 * Manifest box, and a `moov` with the first track's file `mvhd`, each track's `trak` (renumbered) and an
 * `mvex` with one `trex` per track.
 * @param title - written as the Live Server Manifest's `title` meta
 */
export function streamHeader(tracks: readonly SourceTrack[], title?: string): Buffer {
  const mvhd = Buffer.from(tracks[0]!.mvhd);
  // next_track_ID is the last field of mvhd (both versions).
  mvhd.writeUInt32BE(tracks.length + 1, mvhd.length - 4);
  const traks = tracks.map((t, i) => renumberTrak(children(t.trak).next().value!, i + 1));
  const trexes = tracks.map((t, i) => (t.trex ? withTrackId(children(t.trex).next().value!, i + 1) : emptyTrex(i + 1)));
  const moov = makeBox('moov', mvhd, ...traks, makeBox('mvex', ...trexes));
  const lsm = liveServerManifestBox(tracks.map((t, i) => ({ trackId: i + 1, info: t.info })), title);
  return Buffer.concat([smoothFtyp(), lsm, moov]);
}

/** A track with no file behind it (the simulated encoder's sparse tracks): its description and boxes. */
export interface MadeUpTrack {
  info: TrackInfo;
  /** Its `trak`, already numbered with its `track_ID`: its position in the stream, from 1. */
  trak: Buffer;
  /** Its `trex`, numbered the same. */
  trex: Buffer;
}

/**
 * The header of an outgoing stream of made-up tracks, numbered 1…n in that order: `ftyp`, Live Server
 * Manifest box, and a `moov` with a fresh `mvhd` (the first track's timescale), the tracks' `trak`s and
 * an `mvex` with their `trex`es.
 * @param title - written as the Live Server Manifest's `title` meta
 */
export function madeUpStreamHeader(tracks: readonly MadeUpTrack[], title?: string): Buffer {
  const mvhd = synthesizeMvhd(tracks[0]!.info.timescale, tracks.length + 1);
  const moov = makeBox('moov', mvhd, ...tracks.map((t) => t.trak), makeBox('mvex', ...tracks.map((t) => t.trex)));
  const lsm = liveServerManifestBox(tracks.map((t, i) => ({ trackId: i + 1, info: t.info })), title);
  return Buffer.concat([smoothFtyp(), lsm, moov]);
}
