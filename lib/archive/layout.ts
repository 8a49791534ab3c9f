/**
 * Where an archive goes on disk (protocol doc §6.1, the recommended layout):
 *
 *   <archive root>/<point folders>/<point name>/<session start, UTC>[/<segment>]/
 *     <point name>.ism, <point name>.ismc, one <track>.isma (audio) or <track>.ismv (video, and the
 *     captions or ad markers of a sparse track) per track
 *
 * The point's folder drops the `.isml` suffix: a folder named like a definition would make the URL of
 * an archive under the media root ambiguous with the live point's. Every part comes from a validated
 * definition path or a validated track description, and is checked again here before it becomes a path.
 */
import * as path from 'node:path';
import { SmoothError } from '../errors';
import type { TrackInfo } from '../model';

const SEGMENT = /^[A-Za-z0-9._~-]{1,128}$/;

/** The session folder's name: the session's start in UTC, to the second, without characters some file systems refuse. */
export function sessionName(startedAt: number): string {
  return new Date(startedAt).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '-');
}

/**
 * The folder of one archived session of the point at `point` (`dirs/name.isml`).
 * @throws SmoothError ERR_TRAVERSAL when a segment of `point` is not a plain name
 */
export function sessionFolder(root: string, point: string, startedAt: number): string {
  const parts = point.replace(/\.isml$/i, '').split('/');
  for (const p of parts) {
    if (!SEGMENT.test(p) || p === '.' || p === '..') throw new SmoothError('ERR_TRAVERSAL', `publishing point path segment "${p}" cannot name an archive folder`);
  }
  return path.join(root, ...parts, sessionName(startedAt));
}

/** The point's name: the base name of its `.isml`, the archive's `.ism`/`.ismc` names. */
export function presentationName(point: string): string {
  return path.posix.basename(point).replace(/\.isml$/i, '');
}

/**
 * The file name of a track's media file: `<name>_<bitrate>[_<attribute>-<value>…]` with `.isma` for
 * audio and `.ismv` for the others (a sparse text track too: the `.ism` says what each file holds).
 * Characters a file system may refuse become `_`; `taken` makes it unique.
 */
export function trackFileName(info: TrackInfo, taken: ReadonlySet<string>): string {
  const attrs = info.customAttributes.map(([k, v]) => `_${k}-${v}`).join('');
  const stem = `${info.name}_${info.bitrate}${attrs}`.replace(/[^A-Za-z0-9_.-]/g, '_');
  const ext = info.type === 'audio' ? '.isma' : '.ismv';
  let name = `${stem}${ext}`;
  for (let i = 2; taken.has(name.toLowerCase()); i++) name = `${stem}_${i}${ext}`;
  return name;
}
