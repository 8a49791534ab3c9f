/**
 * Mending archives a process left unfinished (killed, a power cut): each media file is cut after its
 * last complete fragment (a `moof` whose `mdat` is whole), gets the `mfra` it lacked, and the folder
 * gets its `.ismc`. The presentation then plays up to the last fragment that reached the disk.
 *
 * Which folders were being written is kept in a small journal in the archive root, so a start reads
 * one file instead of walking every archive.
 */
import { open, readFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { UUID_TFXD, parseTfxd } from '../mp4/boxes';
import { children, childrenOf, findChild } from '../mp4/reader';
import { replaceFile } from '../files';
import { movieFragmentRandomAccess } from './file';

/** Name of the journal of folders being written, in the archive root. */
export const JOURNAL = '.live-smooth-archives.json';
/** Largest `moof` read while mending; a larger one ends the file there. */
const MAX_MOOF = 16 * 2 ** 20;

/** What mending one media file found. */
export interface MendedFile {
  file: string;
  /** Complete fragments kept. */
  fragments: number;
  /** Bytes cut from the end (a partial fragment). */
  cut: number;
  /** The file already ended with its `mfra`. */
  complete: boolean;
}

async function readAt(fh: import('node:fs/promises').FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

/** The `tfxd` time of a single-track `moof`, if it has one. */
function tfxdTime(moof: Buffer): bigint | undefined {
  const box = [...children(moof)][0];
  if (!box) return undefined;
  for (const traf of childrenOf(box)) {
    if (traf.type !== 'traf') continue;
    const tfxd = findChild(traf, 'uuid', UUID_TFXD);
    if (tfxd) return parseTfxd(tfxd).time;
  }
  return undefined;
}

/**
 * Cuts `file` after its last complete fragment and appends the `mfra` listing its fragments. A file
 * that already ends with an `mfra` is left as it is.
 */
export async function mendFile(file: string): Promise<MendedFile> {
  const fh = await open(file, 'r+');
  try {
    const size = (await fh.stat()).size;
    const entries: Array<{ time: bigint; offset: number }> = [];
    let good = 0;
    let pending: { time: bigint; offset: number } | undefined;
    for (let pos = 0; pos + 8 <= size; ) {
      const head = await readAt(fh, pos, 16);
      let boxSize = head.readUInt32BE(0);
      const type = head.toString('latin1', 4, 8);
      if (boxSize === 1 && head.length >= 16) boxSize = Number(head.readBigUInt64BE(8));
      if (boxSize < 8 || pos + boxSize > size) break;
      if (type === 'mfra') return { file, fragments: entries.length, cut: 0, complete: true };
      if (type === 'moof') {
        if (boxSize > MAX_MOOF) break;
        const time = tfxdTime(await readAt(fh, pos, boxSize));
        if (time === undefined) break;
        pending = { time, offset: pos };
      } else if (type === 'mdat') {
        if (!pending) break;
        entries.push(pending);
        pending = undefined;
        good = pos + boxSize;
      } else if (entries.length === 0 && (type === 'ftyp' || type === 'uuid' || type === 'moov')) {
        good = pos + boxSize;
      }
      pos += boxSize;
    }
    await fh.truncate(good);
    const mfra = movieFragmentRandomAccess({ count: entries.length, time: (i) => entries[i]!.time, offset: (i) => entries[i]!.offset });
    await fh.write(mfra, 0, mfra.length, good);
    await fh.datasync();
    return { file, fragments: entries.length, cut: size - good, complete: false };
  } finally {
    await fh.close();
  }
}

/** Mends every media file of a folder; returns what each had. */
export async function mendFolder(folder: string): Promise<MendedFile[]> {
  const names = (await readdir(folder)).filter((n) => /\.ism[va]$/i.test(n)).sort();
  const out: MendedFile[] = [];
  for (const n of names) out.push(await mendFile(path.join(folder, n)));
  return out;
}

/** The folders the journal lists (an unreadable or absent journal lists none). */
export async function readJournal(root: string): Promise<string[]> {
  try {
    const list = JSON.parse(await readFile(path.join(root, JOURNAL), 'utf8')) as unknown;
    return Array.isArray(list) ? list.filter((f): f is string => typeof f === 'string' && path.isAbsolute(f)) : [];
  } catch {
    return [];
  }
}

/** Replaces the journal with `folders`. */
export async function writeJournal(root: string, folders: readonly string[]): Promise<void> {
  await replaceFile(path.join(root, JOURNAL), `${JSON.stringify(folders, null, 1)}\n`);
}
