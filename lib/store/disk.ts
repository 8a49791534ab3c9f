/**
 * A store on disk, for DVR windows (hours of HD) that do not fit in memory. Each track appends its
 * fragments to files of its own; memory holds only a small index entry per fragment, plus the
 * fragments still waiting in a track's write queue.
 *
 * Layout: a folder per store (`disk-setup.ts`), holding `<trackIndex>-<segment>.frag` files. A record is
 * `encodeFragmentMeta(fragment)` followed by the sample bytes. Names are made of numbers only: the
 * point path and the track keys come from the network, and never reach the file system.
 *
 * The files are never read back by another process: the serialised description is in machine byte
 * order and the index lives in memory, so a folder whose owner is gone is only garbage, which the next
 * {@link diskStore} call on the same folder removes.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { access, open, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import createDebug from 'debug';
import { decodeFragmentMeta, encodeFragmentMeta, metaLength, type MediaFragment } from '../media';
import { BudgetQueue } from './budget';
import { DiskStoreOptions, errorCode, invalid, makeStoreFolder, removeStaleFolders, resolveDiskOptions } from './disk-setup';
import type { EvictReason, FragmentStore, FragmentStoreFactory, FragmentStoreOptions, StoredFragment } from './types';

const debug = createDebug('live-smooth:store');

export type { DiskStoreOptions } from './disk-setup';

/**
 * A store factory keeping the fragments of each publishing point on disk, in `options.folder`.
 *
 * The call validates the options, creates the folder when missing, and removes the store folders in
 * it that a process no longer running left behind (synchronously, once: it is meant for setup).
 * @throws SmoothError `ERR_INVALID_OPTION` naming the option that is invalid, or when the folder
 *   cannot be created or written
 */
export function diskStore(options: DiskStoreOptions): FragmentStoreFactory {
  const resolved = resolveDiskOptions(options);
  try {
    mkdirSync(resolved.folder, { recursive: true });
    if (!statSync(resolved.folder).isDirectory()) throw new Error('not a directory');
    accessSync(resolved.folder, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw invalid(`options.folder must be a folder live-smooth can create and write (${(err as Error).message})`);
  }
  removeStaleFolders(resolved.folder);
  return (storeOptions) => new DiskFragmentStore(storeOptions, resolved);
}

/** One file of a track. */
interface Segment {
  readonly path: string;
  /** The store folder it is in: when that is replaced, the track moves to a file in the new one. */
  readonly folder: Promise<string>;
  handle: FileHandle | undefined;
  /** Bytes written to the file: the offset of its next record. */
  size: number;
  /** Records of the file that the index still holds; at 0 the file is garbage. */
  live: number;
  /** A write failed: the file's end is unknown, so no record is appended to it any more. */
  broken: boolean;
  closing: Promise<void> | undefined;
  deleted: boolean;
}

/** The index entry of one fragment; shared by the track's deque, its time map and the byte-budget queue. */
interface Entry {
  readonly track: string;
  readonly owner: Track;
  readonly time: bigint;
  readonly duration: bigint;
  readonly metaLength: number;
  readonly dataSize: number;
  /** The fragment until it is written; then the bytes are only on disk. */
  pending: MediaFragment | undefined;
  segment: Segment | undefined;
  offset: number;
  removed: boolean;
}

interface Track {
  /** Names the track's files instead of its key. */
  readonly index: number;
  /** Time order, which is insertion order; removed entries are skipped and dropped lazily. */
  list: Entry[];
  head: number;
  readonly byTime: Map<bigint, Entry>;
  current: Segment | undefined;
  nextSegment: number;
  /** Tail of the track's write queue; never rejects. */
  queue: Promise<unknown>;
  /** Set by clear(): queued writes of this track are dropped, and it opens no file any more. */
  closed: boolean;
}

/**
 * {@link FragmentStore} on disk. `put` answers a Promise resolving once the fragment is written (or has
 * left the store before it needed to be); `get` answers the sample bytes as a stream for a written
 * fragment and as a Buffer while it waits to be written. `bytes` counts whole records (description and
 * sample bytes), written or waiting.
 *
 * Usually made through {@link diskStore}, which also removes the folders of dead processes.
 */
export class DiskFragmentStore implements FragmentStore {
  readonly #root: string;
  /** sha256 of the point: names the store folder without letting the point's text into a path. */
  readonly #prefix: string;
  readonly #maxBytes: number;
  readonly #maxPendingBytes: number;
  readonly #segmentBytes: number;
  readonly #onEvict: FragmentStoreOptions['onEvict'];
  #tracks = new Map<string, Track>();
  #nextTrackIndex = 0;
  /** Insertion order across tracks, for the byte budget; removed entries are skipped and dropped. */
  readonly #order = new BudgetQueue<Entry>((e) => e.removed);
  #bytes = 0;
  #pendingBytes = 0;
  /** The store folder, made on the first write after construction, clear() or its disappearance. */
  #folder: Promise<string> | undefined;
  /** The last clear()'s clean-up; a new folder waits for it, so files are never mixed across sessions. */
  #clearing: Promise<void> = Promise.resolve();

  /**
   * @param options - what the publishing point passes to every store
   * @param disk - where and how to keep the files; validated like {@link diskStore}'s
   * @throws SmoothError `ERR_INVALID_OPTION` for an invalid option
   */
  constructor(options: FragmentStoreOptions, disk: DiskStoreOptions) {
    const resolved = resolveDiskOptions(disk);
    const maxBytes = resolved.maxBytes ?? options.maxBytes;
    if (typeof maxBytes !== 'number' || !Number.isFinite(maxBytes) || maxBytes <= 0) {
      throw invalid('options.maxBytes must be a positive finite number');
    }
    if (typeof options.point !== 'string') throw invalid('options.point must be a string');
    this.#root = resolved.folder;
    this.#prefix = createHash('sha256').update(options.point).digest('hex').slice(0, 16);
    this.#maxBytes = maxBytes;
    this.#maxPendingBytes = resolved.maxPendingBytes;
    this.#segmentBytes = resolved.segmentBytes;
    this.#onEvict = options.onEvict;
  }

  /** Bytes of the records held, on disk and waiting to be written. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of the records waiting to be written: the part of {@link bytes} held in memory. */
  get memoryBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Queues the fragment for writing. Refused (`false`, synchronously) when the track already holds
   * its time or a newer one, or when the write queue already holds more than `maxPendingBytes`.
   * @returns a Promise resolving `true` once written, `false` when the write failed (then `onEvict`
   *   was called with `error`); it never rejects
   */
  put(track: string, fragment: MediaFragment): boolean | Promise<boolean> {
    const existing = this.#tracks.get(track);
    if (existing) {
      if (existing.byTime.has(fragment.time)) return false;
      const newest = this.#newest(existing);
      if (newest && fragment.time <= newest.time) return false;
    }
    if (this.#pendingBytes > this.#maxPendingBytes) {
      debug('write queue full (%d bytes): fragment %s@%s refused', this.#pendingBytes, track, fragment.time);
      return false;
    }
    const t = existing ?? this.#addTrack(track);
    const entry: Entry = {
      track,
      owner: t,
      time: fragment.time,
      duration: fragment.duration,
      metaLength: metaLength(fragment),
      dataSize: fragment.dataSize,
      pending: fragment,
      segment: undefined,
      offset: 0,
      removed: false,
    };
    const size = entry.metaLength + entry.dataSize;
    t.list.push(entry);
    t.byTime.set(entry.time, entry);
    this.#order.push(entry);
    this.#bytes += size;
    this.#pendingBytes += size;
    const written = t.queue.then(() => this.#write(t, entry, fragment)).catch((err: unknown) => {
      // #write handles its own errors; this only keeps a bug from becoming an unhandled rejection.
      debug('write of %s@%s failed: %O', track, entry.time, err);
      return false;
    });
    t.queue = written;
    while (this.#bytes > this.#maxBytes) {
      const victim = this.#order.oldest();
      if (!victim) break;
      this.#remove(victim.owner, victim, 'bytes');
    }
    this.#order.compact();
    return written;
  }

  /**
   * The fragment of `track` at exactly `time`: the fragment itself while it waits to be written, else
   * its description read from disk and its sample bytes as a stream over the file.
   * @returns `undefined` as well when the fragment leaves the store while it is being read, or when its
   *   file is gone (deleted under the store): then the store drops it, reporting `error`
   */
  get(track: string, time: bigint): StoredFragment | undefined | Promise<StoredFragment | undefined> {
    const entry = this.#tracks.get(track)?.byTime.get(time);
    if (!entry) return undefined;
    if (entry.pending) return entry.pending;
    const segment = entry.segment;
    if (!segment) return undefined;
    return this.#read(entry, segment);
  }

  /** Removes the fragments of `track` ending at or before `end`, oldest first; their files go once empty. */
  trim(track: string, end: bigint): void {
    const t = this.#tracks.get(track);
    if (!t) return;
    // #remove keeps the deque's head on a fragment the track holds.
    while (t.head < t.list.length) {
      const e = t.list[t.head]!;
      if (e.time + e.duration > end) break;
      this.#remove(t, e, 'window');
    }
  }

  /**
   * Removes every fragment (reporting each with `clear`), then, once the queued writes are done, closes
   * the files and deletes the store folder. The store can be used again at once; it makes a new folder
   * when it next writes.
   * @returns a Promise resolving when the folder is gone; it never rejects
   */
  clear(): Promise<void> {
    const tracks = [...this.#tracks.values()];
    for (const t of tracks) {
      t.closed = true;
      // A copy: #remove advances and compacts the deque.
      for (const e of t.list.slice(t.head)) if (!e.removed) this.#remove(t, e, 'clear');
    }
    this.#tracks = new Map();
    this.#nextTrackIndex = 0;
    this.#order.clear();
    const folder = this.#folder;
    this.#folder = undefined;
    const previous = this.#clearing;
    const done = (async () => {
      await previous;
      // Writes already started must end before their files can be closed; queued ones are skipped.
      await Promise.all(tracks.map((t) => t.queue));
      await Promise.all(tracks.map((t) => (t.current ? this.#close(t.current) : undefined)));
      const dir = folder && (await folder.catch(() => undefined));
      if (dir) await rm(dir, { recursive: true, force: true });
    })().catch((err: unknown) => debug('cannot remove store folder: %O', err));
    this.#clearing = done;
    return done;
  }

  /** The newest fragment the track holds, dropping entries that failed to write from the deque's end. */
  #newest(t: Track): Entry | undefined {
    while (t.list.length > t.head && t.list[t.list.length - 1]!.removed) t.list.pop();
    return t.list.length > t.head ? t.list[t.list.length - 1] : undefined;
  }

  #addTrack(key: string): Track {
    const t: Track = {
      index: this.#nextTrackIndex++,
      list: [],
      head: 0,
      byTime: new Map(),
      current: undefined,
      nextSegment: 0,
      queue: Promise.resolve(),
      closed: false,
    };
    this.#tracks.set(key, t);
    return t;
  }

  /**
   * Takes a fragment out of the index and reports it. The deque's head moves past removed entries at
   * once (a track evicted only by the byte budget is never trimmed); one removed after a failed write
   * behind the head is dropped when the head reaches it.
   */
  #remove(t: Track, e: Entry, reason: EvictReason): void {
    e.removed = true;
    // A queued write checks `removed` and skips; the fragment's memory goes with the queue's reference.
    e.pending = undefined;
    t.byTime.delete(e.time);
    while (t.head < t.list.length && t.list[t.head]!.removed) t.list[t.head++] = undefined as unknown as Entry;
    if (t.head > 64 && t.head * 2 > t.list.length) {
      t.list = t.list.slice(t.head);
      t.head = 0;
    }
    this.#order.left();
    this.#bytes -= e.metaLength + e.dataSize;
    const segment = e.segment;
    if (segment) {
      segment.live--;
      if (segment.live === 0 && segment !== t.current) this.#delete(segment);
    }
    this.#onEvict?.(e.track, { time: e.time, duration: e.duration }, reason);
  }

  /** Appends a fragment's record to its track's current file; runs in the track's write queue. */
  async #write(t: Track, e: Entry, fragment: MediaFragment): Promise<boolean> {
    const size = e.metaLength + e.dataSize;
    try {
      if (e.removed) return true;
      const meta = encodeFragmentMeta(fragment);
      if (meta.length !== e.metaLength) throw new Error('fragment description changed while queued');
      const segment = await this.#segmentFor(t, size);
      if (e.removed) return true;
      const offset = segment.size;
      let written: number;
      try {
        if (!segment.handle) throw new Error('file already closed');
        ({ bytesWritten: written } = await segment.handle.writev([meta, fragment.data]));
      } catch (err) {
        segment.broken = true;
        throw err;
      }
      if (written !== size) {
        segment.broken = true;
        throw new Error(`short write: ${written} of ${size} bytes`);
      }
      segment.size += size;
      if (e.removed) return true;
      e.segment = segment;
      e.offset = offset;
      e.pending = undefined;
      segment.live++;
      return true;
    } catch (err) {
      if (e.removed) return true;
      debug('write of %s@%s failed: %O', e.track, e.time, err);
      this.#remove(t, e, 'error');
      return false;
    } finally {
      this.#pendingBytes -= size;
    }
  }

  /** The file the next record of `size` bytes goes to: the current one, or a new one when it is full. */
  async #segmentFor(t: Track, size: number): Promise<Segment> {
    const current = t.current;
    if (
      current &&
      !current.broken &&
      current.folder === this.#folder &&
      (current.size === 0 || current.size + size <= this.#segmentBytes)
    ) {
      return current;
    }
    if (current) {
      t.current = undefined;
      if (current.live === 0) this.#delete(current);
      else await this.#close(current);
    }
    const name = `${t.index}-${t.nextSegment++}.frag`;
    let folder = this.#folderFor(t);
    let handle: FileHandle;
    let path = join(await folder, name);
    try {
      handle = await open(path, 'a');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      // The folder went away under the store (a clean-up by hand, a tmp reaper): make a new one, once
      // for all the tracks that find it gone.
      if (this.#folder === folder) this.#folder = undefined;
      folder = this.#folderFor(t);
      path = join(await folder, name);
      handle = await open(path, 'a');
    }
    const segment: Segment = { path, folder, handle, size: 0, live: 0, broken: false, closing: undefined, deleted: false };
    if (t.closed) {
      // clear() ran while the file was opening: it only closes what it found, so close this one here.
      void this.#close(segment);
      throw new Error('store cleared');
    }
    t.current = segment;
    return segment;
  }

  /** The store folder, made when missing. */
  #folderFor(t: Track): Promise<string> {
    // clear() waits for this track's queue before removing folders: a new folder made on behalf of a
    // cleared track would wait for that clear() in turn.
    if (t.closed) return Promise.reject(new Error('store cleared'));
    let folder = this.#folder;
    if (!folder) {
      folder = this.#makeFolder();
      this.#folder = folder;
      const made = folder;
      // Forget a failed attempt, so the next write tries again.
      made.catch(() => {
        if (this.#folder === made) this.#folder = undefined;
      });
    }
    return folder;
  }

  async #makeFolder(): Promise<string> {
    await this.#clearing;
    return makeStoreFolder(this.#root, this.#prefix);
  }

  async #read(entry: Entry, segment: Segment): Promise<StoredFragment | undefined> {
    const { path } = segment;
    const { offset, metaLength: length, dataSize, time } = entry;
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      // Unless it was trimmed and its file deleted since the look-up, the file went away under the
      // store: drop what cannot be served, so manifests stop listing it, and append elsewhere.
      if (!entry.removed) {
        debug('%s is gone: %s@%s dropped', path, entry.track, time);
        segment.broken = true;
        this.#remove(entry.owner, entry, 'error');
        // The whole folder gone: the other tracks' open files are unlinked too, so all move on.
        const folderGone = await access(dirname(path)).then(
          () => false,
          () => true,
        );
        if (folderGone && this.#folder === segment.folder) this.#folder = undefined;
      }
      return undefined;
    }
    try {
      // Not pooled: the description's views keep this buffer alive as long as the response holds them.
      const bytes = Buffer.allocUnsafeSlow(length);
      const { bytesRead } = await handle.read(bytes, 0, length, offset);
      if (bytesRead !== length) throw new Error(`${path}: record at ${offset} is truncated`);
      const meta = decodeFragmentMeta(bytes, dataSize);
      if (meta.time !== time) throw new Error(`${path}: record at ${offset} is not the fragment at ${time}`);
      if (dataSize === 0) {
        await handle.close();
        return { ...meta, data: Buffer.alloc(0) };
      }
      const start = offset + length;
      // The stream owns the handle from here and closes it when it ends or is destroyed. Once open,
      // the file stays readable even if a trim deletes it meanwhile.
      return { ...meta, data: handle.createReadStream({ start, end: start + dataSize - 1 }) };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** Closes a file's append handle once; never rejects. */
  #close(segment: Segment): Promise<void> {
    segment.closing ??= (async () => {
      const handle = segment.handle;
      segment.handle = undefined;
      try {
        await handle?.close();
      } catch (err) {
        debug('cannot close %s: %O', segment.path, err);
      }
    })();
    return segment.closing;
  }

  /** Closes and deletes a file none of whose records the store holds any more, in the background. */
  #delete(segment: Segment): void {
    if (segment.deleted) return;
    segment.deleted = true;
    void this.#close(segment)
      .then(() => rm(segment.path, { force: true }))
      .catch((err: unknown) => debug('cannot delete %s: %O', segment.path, err));
  }

}
