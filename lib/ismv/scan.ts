/**
 * Scanning fragmented MP4 files (`.ismv`/`.isma`): the header boxes read and parsed, every `moof`
 * indexed by track with where it and its `mdat` lie, by positioned reads (a file is never read whole).
 * A scan of a file still being written stops before an incomplete last fragment and can be resumed
 * there when the file has grown.
 */
import type { FileHandle } from 'node:fs/promises';
import { EncoderError } from '../errors';
import {
  Moov,
  Trex,
  UUID_LIVE_SERVER_MANIFEST,
  UUID_TFXD,
  liveServerManifestText as lsmBoxText,
  parseMoov,
  parseTfdt,
  parseTfhd,
  parseTfxd,
  parseTrun,
} from '../mp4/boxes';
import { Box, children, childrenOf, printable, readHeader } from '../mp4/reader';

/** Where one track's fragment sits in its file, and its time. */
export interface SourceFragment {
  moofOffset: number;
  /** 0 until the fragment is first read when the index came from the file's `tfra` (also `mdat*` and `trafs`). */
  moofSize: number;
  mdatOffset: number;
  mdatSize: number;
  /** trafs in the moof; a moof with several is split when read. */
  trafs: number;
  /** Start time (tfxd, else tfdt, else the end of the previous fragment), track timescale. */
  time: bigint;
  /** 0 only for a sparse event of unknown duration (its tfxd says 0). */
  duration: bigint;
}

/**
 * Where a {@link Source} gets its file handles: an open handle of `file` for as long as `fn` runs. The
 * on-demand server shares one bounded pool (`FilePool`) between its presentations; the encoder keeps
 * its few files open.
 */
export interface FileHandles {
  use<T>(file: string, fn: (handle: FileHandle) => Promise<T>): Promise<T>;
}

/** Headers and per-file parse results before tracks are chosen. */
export interface ScannedFile {
  file: string;
  moov: Moov;
  /** Raw boxes of the moov: mvhd, trak per track id, trex per track id. */
  mvhd: Buffer;
  traks: Map<number, Buffer>;
  trexes: Map<number, Buffer>;
  /** Text of a Live Server Manifest box, when the file has one (a live archive replayed). */
  lsm: string | undefined;
  fragments: Map<number, SourceFragment[]>;
  /** Sample bytes per track, for an average bitrate. */
  bytes: Map<number, number>;
  /** Where the scan stopped, to resume when the file grows. */
  state: ScanState;
}

const HEADER_READ = 32; // size, type, largesize and uuid user type
const MAX_HEADER_BOX = 64 * 1024 * 1024; // moov and LSM boxes are read whole

export function inputError(file: string, problem: string): EncoderError {
  return new EncoderError('ERR_ENCODER_INPUT', `${file}: ${problem}`, { file });
}

export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at offset ${position + done}`);
    done += bytesRead;
  }
  return buf;
}

/** The one box in `buf` (a whole box read from a file). */
export function soleBox(buf: Buffer): Box {
  const first = children(buf).next();
  if (first.done) throw new Error('empty box');
  return first.value;
}

/** Scans a fragmented MP4 file: header boxes read and parsed, each moof parsed into the fragment index. */
export async function scanFile(file: string, maxBoxSize: number, files: FileHandles, growing: boolean, randomAccess = false): Promise<ScannedFile> {
  let opened = false;
  try {
    return await files.use(file, (fh) => {
      opened = true;
      return scanHandle(file, fh, maxBoxSize, growing, randomAccess);
    });
  } catch (err) {
    if (!opened) throw inputError(file, `cannot open: ${(err as Error).message}`);
    throw err;
  }
}

/** Where a scan of a file stands: what it found, and the offset after the last box it took whole. */
export interface ScanState {
  moov: Moov | undefined;
  moovBox: Box | undefined;
  lsm: string | undefined;
  moofs: number;
  fragments: Map<number, SourceFragment[]>;
  bytes: Map<number, number>;
  /** End of the previous fragment per track: the start of a fragment with neither tfxd nor tfdt. */
  running: Map<number, bigint>;
  /** Offset the next scan of a growing file resumes at: after the last complete fragment or header box. */
  end: number;
  /** The file ends with its `mfra`: it is finished, nothing more will be added to it. */
  finished: boolean;
}

/**
 * Scans the boxes of `file` from `state.end` to `size`, adding every complete fragment to the state. A
 * growing file (a live archive being written) stops before an incomplete fragment at its end, to be
 * resumed there; any other file must be whole.
 */
export async function scanBoxes(
  file: string,
  fh: FileHandle,
  size: number,
  state: ScanState,
  maxBoxSize: number,
  growing: boolean,
  headerOnly = false,
): Promise<void> {
  let pending: { offset: number; box: Box } | undefined;
  let pos = state.end;
  while (pos < size) {
    const head = await readAt(fh, pos, Math.min(HEADER_READ, size - pos));
    let header;
    try {
      header = readHeader(head, 0, head.length, Number.MAX_SAFE_INTEGER);
    } catch (err) {
      throw inputError(file, `${pos === 0 ? 'not an MP4/ISMV file' : 'malformed'}: ${(err as Error).message} (offset ${pos})`);
    }
    // A file still being written ends where its last complete fragment does.
    const partial = growing && state.moofs > 0;
    if (!header) {
      if (partial) break;
      throw inputError(file, `truncated: the file ends inside a box header at offset ${pos}`);
    }
    if (pos === 0 && header.type !== 'ftyp') throw inputError(file, "not an MP4/ISMV file (it does not start with an 'ftyp' box)");
    const boxSize = header.size === 0 ? size - pos : header.size;
    if (pos + boxSize > size) {
      if (partial) break;
      throw inputError(
        file,
        `truncated: box '${printable(header.type)}' at offset ${pos} declares ${boxSize} bytes but only ${size - pos} remain`,
      );
    }
    const type = header.type;
    if (headerOnly && type === 'moof') break;
    const isLsm = type === 'uuid' && header.uuid === UUID_LIVE_SERVER_MANIFEST;
    if (type === 'moov' || isLsm || type === 'moof') {
      const limit = type === 'moof' ? maxBoxSize : MAX_HEADER_BOX;
      if (boxSize > limit) throw inputError(file, `box '${type}' at offset ${pos} is ${boxSize} bytes, larger than ${limit}`);
      const box = soleBox(await readAt(fh, pos, boxSize));
      try {
        if (type === 'moov') {
          state.moovBox = box;
          state.moov = parseMoov(box);
        } else if (isLsm) {
          state.lsm = lsmBoxText(box);
        } else {
          if (!state.moov) throw inputError(file, `a moof at offset ${pos} comes before the moov`);
          if (pending) throw inputError(file, `moof at offset ${pending.offset} has no mdat`);
          pending = { offset: pos, box };
          state.moofs++;
        }
      } catch (err) {
        if (err instanceof EncoderError) throw err;
        throw inputError(file, `bad '${type}' box at offset ${pos}: ${(err as Error).message}`);
      }
    } else if (type === 'mfra') {
      state.finished = true;
    } else if (type === 'mdat' && pending) {
      if (boxSize > maxBoxSize) throw inputError(file, `mdat at offset ${pos} is ${boxSize} bytes, larger than ${maxBoxSize}`);
      const moov = state.moov!;
      const trexOf = (id: number): Trex | undefined => moov.tracks.find((t) => t.trackId === id)?.trex;
      try {
        indexMoof(pending.box, pending.offset, pos, boxSize, trexOf, state.running, state.fragments, state.bytes);
      } catch (err) {
        throw inputError(file, `bad moof at offset ${pending.offset}: ${(err as Error).message}`);
      }
      pending = undefined;
    }
    pos += boxSize;
    if (!pending) state.end = pos;
  }
  if (pending && !growing) throw inputError(file, `truncated: the moof at offset ${pending.offset} has no mdat`);
  if (pending) state.moofs--;
}

async function scanHandle(file: string, fh: FileHandle, maxBoxSize: number, growing: boolean, randomAccess: boolean): Promise<ScannedFile> {
  const size = (await fh.stat()).size;
  if (size === 0) throw inputError(file, 'the file is empty');
  const state: ScanState = { moov: undefined, moovBox: undefined, lsm: undefined, moofs: 0, fragments: new Map(), bytes: new Map(), running: new Map(), end: 0, finished: false };
  const index = randomAccess ? await readRandomAccess(fh, size, maxBoxSize).catch(() => undefined) : undefined;
  if (index) await scanBoxes(file, fh, index.start, state, maxBoxSize, false, true);
  if (!index || !state.moov || !(await fromRandomAccess(fh, state, index, maxBoxSize).catch(() => false))) {
    Object.assign(state, { moov: undefined, moovBox: undefined, lsm: undefined, moofs: 0, end: 0, finished: false });
    state.fragments.clear();
    state.bytes.clear();
    await scanBoxes(file, fh, size, state, maxBoxSize, growing);
  }
  const { moov, moovBox, lsm, moofs, fragments, bytes } = state;
  if (!moov || !moovBox) throw inputError(file, 'no moov box (not an MP4 movie)');
  if (moofs === 0) {
    throw inputError(file, 'not fragmented: no moof boxes (write it with ffmpeg -f ismv, or -movflags frag_keyframe)');
  }
  const traks = new Map<number, Buffer>();
  const trexes = new Map<number, Buffer>();
  let mvhd: Buffer | undefined;
  let trakIndex = 0;
  for (const c of childrenOf(moovBox)) {
    if (c.type === 'mvhd') mvhd = Buffer.from(c.data);
    // parseMoov lists the tracks in trak order.
    else if (c.type === 'trak') traks.set(moov.tracks[trakIndex++]!.trackId, Buffer.from(c.data));
    else if (c.type === 'mvex') {
      for (const t of childrenOf(c)) if (t.type === 'trex') trexes.set(t.data.readUInt32BE(t.headerSize + 4), Buffer.from(t.data));
    }
  }
  if (!mvhd) throw inputError(file, 'the moov has no mvhd');
  for (const [id, list] of fragments) {
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.time <= list[i - 1]!.time) {
        throw inputError(file, `track ${id}: fragment at offset ${list[i]!.moofOffset} does not start after the previous one`);
      }
    }
  }
  return { file, moov, mvhd, traks, trexes, lsm, fragments, bytes, state };
}

/** A finished file's `mfra`: each track's `tfra` entries, and where the `mfra` starts. */
interface RandomAccessIndex {
  /** Offset of the `mfra` (the end of the fragments). */
  start: number;
  tracks: Map<number, Array<{ time: bigint; offset: number }>>;
}

/**
 * Reads the `mfra` a finished file ends with (found from its `mfro`, the last 16 bytes): every track's
 * `tfra` (versions 0 and 1; times signed, as `tfxd` times may start below 0). `undefined` for a file
 * without one.
 */
async function readRandomAccess(fh: FileHandle, size: number, maxBoxSize: number): Promise<RandomAccessIndex | undefined> {
  if (size < 16) return undefined;
  const mfro = await readAt(fh, size - 16, 16);
  if (mfro.toString('latin1', 4, 8) !== 'mfro') return undefined;
  const mfraSize = mfro.readUInt32BE(12);
  if (mfraSize < 16 || mfraSize > size || mfraSize > maxBoxSize) return undefined;
  const mfra = soleBox(await readAt(fh, size - mfraSize, mfraSize));
  if (mfra.type !== 'mfra') return undefined;
  const tracks = new Map<number, Array<{ time: bigint; offset: number }>>();
  for (const tfra of childrenOf(mfra)) {
    if (tfra.type !== 'tfra') continue;
    const d = tfra.data;
    let p = tfra.headerSize;
    const version = d[p]!;
    p += 4;
    const trackId = d.readUInt32BE(p);
    const sizes = d.readUInt32BE(p + 4);
    const count = d.readUInt32BE(p + 8);
    p += 12;
    const skip = ((sizes >> 4) & 3) + 1 + ((sizes >> 2) & 3) + 1 + (sizes & 3) + 1;
    const entry = (version === 1 ? 16 : 8) + skip;
    if (p + count * entry > d.length) return undefined;
    const list: Array<{ time: bigint; offset: number }> = [];
    for (let i = 0; i < count; i++, p += entry) {
      const time = version === 1 ? d.readBigInt64BE(p) : BigInt(d.readUInt32BE(p));
      const offset = version === 1 ? Number(d.readBigUInt64BE(p + 8)) : d.readUInt32BE(p + 4);
      list.push({ time, offset });
    }
    tracks.set(trackId, list);
  }
  return tracks.size > 0 ? { start: size - mfraSize, tracks } : undefined;
}

/**
 * Builds the fragment index from the `tfra`s, reading one `moof` per track instead of all of them:
 * start times and `moof` offsets from the entries, each duration up to the next start, the last one's
 * from its own `moof`, and sizes as the distance to the next fragment in the file (for the average
 * bitrate). The other fragments' `moof` and `mdat` sizes are learnt when each is first read. Returns
 * false when the `tfra`s do not describe every track or do not fit the file: the caller scans instead.
 */
async function fromRandomAccess(fh: FileHandle, state: ScanState, index: RandomAccessIndex, maxBoxSize: number): Promise<boolean> {
  const moov = state.moov!;
  const media = moov.tracks.filter((t) => t.handler === 'vide' || t.handler === 'soun');
  // A sparse track's fragments leave gaps: "up to the next start" would be wrong, so a file with any
  // other track is scanned (a live archive keeps its captions and ad markers in small files of their own).
  if (media.length === 0 || media.length < moov.tracks.length) return false;
  if (media.some((t) => (index.tracks.get(t.trackId)?.length ?? 0) === 0)) return false;
  const offsets = [...index.tracks.values()].flatMap((l) => l.map((e) => e.offset)).sort((a, b) => a - b);
  const next = new Map<number, number>();
  offsets.forEach((o, i) => next.set(o, offsets[i + 1] ?? index.start));
  const trexOf = (id: number): Trex | undefined => moov.tracks.find((t) => t.trackId === id)?.trex;
  for (const t of media) {
    const entries = index.tracks.get(t.trackId)!;
    const list: SourceFragment[] = [];
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.offset < state.end || e.offset >= index.start) return false;
      if (i > 0 && e.time <= entries[i - 1]!.time) return false;
      const following = entries[i + 1];
      list.push({ moofOffset: e.offset, moofSize: 0, mdatOffset: 0, mdatSize: 0, trafs: 0, time: e.time, duration: following ? following.time - e.time : 0n });
      bytes += next.get(e.offset)! - e.offset;
    }
    // The last fragment: its moof says how long it is (and how it sits in the file).
    const last = list[list.length - 1]!;
    const read = await readFragmentAt(fh, last.moofOffset, index.start, maxBoxSize);
    if (!read) return false;
    const found = new Map<number, SourceFragment[]>();
    try {
      indexMoof(read.moof, last.moofOffset, read.mdatOffset, read.mdatSize, trexOf, new Map(), found, new Map());
    } catch {
      return false;
    }
    const own = found.get(t.trackId)?.[0];
    if (!own) return false;
    list[list.length - 1] = { ...own, time: last.time };
    state.fragments.set(t.trackId, list);
    state.bytes.set(t.trackId, bytes);
    state.moofs += list.length;
  }
  state.finished = true;
  state.end = index.start;
  return true;
}

/**
 * The `moof` at `offset` and the `mdat` after it (other boxes between them are skipped), read before
 * `end`: `undefined` when the boxes there are not that.
 */
export async function readFragmentAt(
  fh: FileHandle,
  offset: number,
  end: number,
  maxBoxSize: number,
): Promise<{ moof: Box; mdatOffset: number; mdatSize: number } | undefined> {
  const boxAt = async (pos: number): Promise<{ type: string; size: number } | undefined> => {
    if (pos + 8 > end) return undefined;
    const head = await readAt(fh, pos, Math.min(HEADER_READ, end - pos));
    const header = readHeader(head, 0, head.length, Number.MAX_SAFE_INTEGER);
    if (!header || header.size < 8 || pos + header.size > end) return undefined;
    return { type: header.type, size: header.size };
  };
  const m = await boxAt(offset);
  if (!m || m.type !== 'moof' || m.size > maxBoxSize) return undefined;
  const moof = soleBox(await readAt(fh, offset, m.size));
  let pos = offset + m.size;
  for (let skipped = 0; skipped < 4; skipped++) {
    const b = await boxAt(pos);
    if (!b) return undefined;
    if (b.type === 'mdat') return b.size > maxBoxSize ? undefined : { moof, mdatOffset: pos, mdatSize: b.size };
    pos += b.size;
  }
  return undefined;
}

/** Adds the trafs of one moof to the per-track fragment index. */
function indexMoof(
  moof: Box,
  moofOffset: number,
  mdatOffset: number,
  mdatSize: number,
  trexOf: (trackId: number) => Trex | undefined,
  running: Map<number, bigint>,
  fragments: Map<number, SourceFragment[]>,
  bytes: Map<number, number>,
): void {
  const trafs = [...childrenOf(moof)].filter((c) => c.type === 'traf');
  if (trafs.length === 0) throw new Error('no traf');
  for (const traf of trafs) {
    let trackId: number | undefined;
    let defaults: { duration?: number; size?: number } = {};
    let tfxd: { time: bigint; duration: bigint } | undefined;
    let tfdt: bigint | undefined;
    let duration = 0n;
    let size = 0;
    for (const c of childrenOf(traf)) {
      if (c.type === 'tfhd') {
        const tfhd = parseTfhd(c);
        trackId = tfhd.trackId;
        const trex = trexOf(trackId);
        defaults = {
          duration: tfhd.defaultSampleDuration ?? trex?.defaultSampleDuration,
          size: tfhd.defaultSampleSize ?? trex?.defaultSampleSize,
        };
      } else if (c.type === 'tfdt') tfdt = parseTfdt(c);
      else if (c.type === 'uuid' && c.uuid === UUID_TFXD) tfxd = parseTfxd(c);
      else if (c.type === 'trun') {
        for (const s of parseTrun(c).samples) {
          duration += BigInt(s.duration ?? defaults.duration ?? 0);
          size += s.size ?? defaults.size ?? 0;
        }
      }
    }
    if (trackId === undefined) throw new Error('traf without tfhd');
    const time = tfxd?.time ?? tfdt ?? running.get(trackId) ?? 0n;
    const length = tfxd && tfxd.duration > 0n ? tfxd.duration : duration;
    // A sparse event may say its duration is unknown (tfxd 0): the reader, which knows which tracks are
    // sparse, refuses it for the others. Samples without any duration and no tfxd say nothing at all.
    if (length <= 0n && !tfxd) throw new Error(`track ${trackId}: fragment duration is 0`);
    running.set(trackId, time + length);
    let list = fragments.get(trackId);
    if (!list) fragments.set(trackId, (list = []));
    list.push({ moofOffset, moofSize: moof.data.length, mdatOffset, mdatSize, trafs: trafs.length, time, duration: length });
    bytes.set(trackId, (bytes.get(trackId) ?? 0) + size);
  }
}
