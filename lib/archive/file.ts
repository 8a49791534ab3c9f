/**
 * One track's archive file, written as it arrives: `ftyp`, a Live Server Manifest box, the track's
 * `moov`, then a `moof` + `mdat` per fragment (Smooth fragment layout: `tfxd`, no `tfrf`), and when it
 * is finished a `mfra` with a version-1 `tfra` (times = the `tfxd` times, so `Fragments(…=t)` resolves
 * by exact match) and `mfro`. The file is at once an on-demand `.ismv`/`.isma` and a replayable ingest
 * stream (POSTed to `Streams()` it reproduces the track).
 *
 * Writes never block the caller: they queue on the file, in order, with their bytes counted in a queue
 * shared by every archive of the origin; a queue over its bound or a failed write stops the file, and
 * the caller hears it through `onError` once.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { MediaFragment } from '../media';
import type { FragmentTime, TrackInfo } from '../model';
import { smoothFtyp } from '../ismv/header';
import { liveServerManifestBox } from '../ismv/lsm';
import { children } from '../mp4/reader';
import { makeBox, makeFullBox, writeMoof } from '../mp4/writer';
import { CMAF_TRACK_ID } from '../mp4/init';

/** Bytes queued for the disk over every archive of an origin, and the bound. */
export class WriteQueue {
  /** Bytes handed to a file and not yet written. */
  pending = 0;
  /** Bytes written to disk since the queue was made. */
  written = 0;

  /** @param max - bytes that may wait for the disk; more means the disk cannot keep up */
  constructor(readonly max: number) {}

  /** Takes `n` bytes of room, or returns false when the queue is full. */
  reserve(n: number): boolean {
    if (this.pending + n > this.max) return false;
    this.pending += n;
    return true;
  }

  release(n: number): void {
    this.pending -= n;
  }
}

/** Why an archive file stopped. */
export interface ArchiveFailure {
  /** `ERR_ARCHIVE_BEHIND` (the write queue is full), or the file system's code (`ENOSPC`, `EACCES`, …). */
  code: string;
  message: string;
}

/** Options of a {@link TrackFile}. */
export interface TrackFileOptions {
  queue: WriteQueue;
  /** ms between `fdatasync`s while fragments arrive (the most a power cut can lose, plus the queue). */
  syncInterval: number;
  /** The clock of the origin, ms. */
  now: () => number;
  /** Called once, when the file stops because of a failure. */
  onError: (failure: ArchiveFailure) => void;
  /** Resolves when the file's folder exists (the file is created after it). */
  ready?: Promise<void>;
  /** Creates the file. Default: `open(file, 'wx')` (it must not exist). */
  create?: (file: string) => Promise<FileHandle>;
}

/**
 * Times, durations and `moof` offsets of the fragments a file holds: 24 bytes each in typed arrays that
 * double as they fill, where an object per fragment would cost several times that over a long event.
 * Times are never negative here (listed times are clamped at 0).
 */
export class FragmentIndex {
  #times = new BigUint64Array(64);
  #durations = new BigUint64Array(64);
  #offsets = new Float64Array(64);
  #count = 0;

  /** Fragments recorded. */
  get count(): number {
    return this.#count;
  }

  push(time: bigint, duration: bigint, offset: number): void {
    if (this.#count === this.#times.length) {
      const n = this.#count * 2;
      const times = new BigUint64Array(n);
      const durations = new BigUint64Array(n);
      const offsets = new Float64Array(n);
      times.set(this.#times);
      durations.set(this.#durations);
      offsets.set(this.#offsets);
      [this.#times, this.#durations, this.#offsets] = [times, durations, offsets];
    }
    this.#times[this.#count] = time;
    this.#durations[this.#count] = duration;
    this.#offsets[this.#count] = offset;
    this.#count++;
  }

  /** Start time of fragment `i`. */
  time(i: number): bigint {
    return this.#times[i]!;
  }

  /** Duration of fragment `i`. */
  duration(i: number): bigint {
    return this.#durations[i]!;
  }

  /** Offset of fragment `i`'s `moof` in the file. */
  offset(i: number): number {
    return this.#offsets[i]!;
  }

  /** The fragments as times and durations (built on demand, for a manifest). */
  list(): FragmentTime[] {
    const out: FragmentTime[] = [];
    for (let i = 0; i < this.#count; i++) out.push({ time: this.#times[i]!, duration: this.#durations[i]! });
    return out;
  }
}

/** What a `tfra` lists: each fragment's time and where its `moof` starts. */
export interface RandomAccess {
  readonly count: number;
  time(i: number): bigint;
  offset(i: number): number;
}

/** Marks the `sample_number`, `trun_number` and `traf_number` fields as one byte each (0b00 sizes). */
const TFRA_ENTRY_BYTES = 8 + 8 + 3;

/**
 * The header of an archive file for one track: the track is `track_ID` 1, as in its init segment.
 * @param init - the track's init segment (`ftyp` + `moov`)
 */
export function archiveHeader(info: TrackInfo, init: Buffer, title: string | undefined): Buffer {
  let moov: Buffer | undefined;
  for (const box of children(init)) if (box.type === 'moov') moov = box.data;
  if (!moov) throw new Error('init segment has no moov');
  const lsm = liveServerManifestBox([{ trackId: CMAF_TRACK_ID, info }], title, 'live-smooth archive');
  return Buffer.concat([smoothFtyp(), lsm, moov]);
}

/** `mfra` with one version-1 `tfra` for track 1, and `mfro`. */
export function movieFragmentRandomAccess(entries: RandomAccess): Buffer {
  const body = Buffer.alloc(12 + entries.count * TFRA_ENTRY_BYTES);
  body.writeUInt32BE(CMAF_TRACK_ID, 0);
  body.writeUInt32BE(0, 4); // reserved, and 1-byte traf/trun/sample numbers
  body.writeUInt32BE(entries.count, 8);
  let p = 12;
  for (let i = 0; i < entries.count; i++) {
    body.writeBigUInt64BE(BigInt.asUintN(64, entries.time(i)), p);
    body.writeBigUInt64BE(BigInt(entries.offset(i)), p + 8);
    body[p + 16] = 1;
    body[p + 17] = 1;
    body[p + 18] = 1;
    p += TFRA_ENTRY_BYTES;
  }
  const tfra = makeFullBox('tfra', 1, 0, body);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(8 + tfra.length + 16);
  return makeBox('mfra', tfra, makeFullBox('mfro', 0, 0, size));
}

/** A track's archive file being written. */
export class TrackFile {
  /** Fragments written (queued), oldest first: the `tfra` and the client manifest list them. */
  readonly fragments = new FragmentIndex();
  readonly #options: TrackFileOptions;
  readonly #handle: Promise<FileHandle>;
  /** The end of the file as queued: where the next write goes. */
  #size = 0;
  #tail: Promise<void>;
  #sequence = 0;
  #lastSync: number;
  #failed: ArchiveFailure | undefined;
  #finished = false;

  /**
   * Creates the file (it must not exist) and queues its header.
   * @param file - absolute path
   */
  constructor(readonly file: string, header: Buffer, options: TrackFileOptions) {
    this.#options = options;
    this.#lastSync = options.now();
    this.#handle = (options.ready ?? Promise.resolve()).then(() => (options.create ?? ((f: string) => open(f, 'wx')))(file));
    // The chain never rejects: every step handles its own failure, so later steps still release their bytes.
    this.#tail = this.#handle.then(
      () => undefined,
      (err: unknown) => this.#fail(err),
    );
    this.#write([header]);
  }

  /** Why the file stopped, if it did. */
  get failure(): ArchiveFailure | undefined {
    return this.#failed;
  }

  /** Bytes written or queued. */
  get size(): number {
    return this.#size;
  }

  /** Queues a fragment: its Smooth header built once here, its samples as stored (not copied). */
  append(f: MediaFragment): void {
    if (this.#failed || this.#finished) return;
    const { head } = writeMoof({
      sequenceNumber: ++this.#sequence,
      trackId: CMAF_TRACK_ID,
      sampleDescriptionIndex: f.sampleDescriptionIndex,
      decodeTime: f.decodeTimeSent ? f.decodeTime : undefined,
      samples: f.samples,
      extra: f.extra,
      tfxd: { time: f.time, duration: f.duration },
      dataSize: f.dataSize,
    });
    const offset = this.#size;
    if (!this.#write([head, f.data])) return;
    this.fragments.push(f.time, f.duration, offset);
  }

  /**
   * Writes the `mfra`, syncs and closes: the file is then a complete on-demand presentation track.
   * Resolves when done; a file that failed is closed as it is (the recovery pass can mend it).
   */
  finish(): Promise<void> {
    if (!this.#finished) {
      this.#finished = true;
      if (!this.#failed) this.#write([movieFragmentRandomAccess(this.fragments)], true);
      this.#tail = this.#tail.then(async () => {
        const fh = await this.#handle.catch(() => undefined);
        if (!fh) return;
        try {
          if (!this.#failed) await fh.datasync();
        } catch (err) {
          this.#fail(err);
        } finally {
          await fh.close().catch(() => undefined);
        }
      });
    }
    return this.#tail;
  }

  /** Queues `parts` at the end of the file; false when the file stopped (now or before). */
  #write(parts: readonly Buffer[], force = false): boolean {
    if (this.#failed || (this.#finished && !force)) return false;
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    if (!this.#options.queue.reserve(bytes)) {
      const mib = (this.#options.queue.max / 2 ** 20).toFixed(0);
      this.#fail({ code: 'ERR_ARCHIVE_BEHIND', message: `the disk is too slow: ${mib} MiB of archive writes are waiting` });
      return false;
    }
    const position = this.#size;
    this.#size += bytes;
    this.#tail = this.#tail.then(async () => {
      try {
        if (this.#failed) return;
        const fh = await this.#handle;
        let done = 0;
        // writev may write less than asked (a full disk, a signal): go on from where it stopped.
        while (done < bytes) {
          let skip = done;
          const rest: Buffer[] = [];
          for (const p of parts) {
            if (skip >= p.length) skip -= p.length;
            else {
              rest.push(skip ? p.subarray(skip) : p);
              skip = 0;
            }
          }
          const { bytesWritten } = await fh.writev(rest, position + done);
          if (bytesWritten === 0) throw Object.assign(new Error('no bytes written'), { code: 'EIO' });
          done += bytesWritten;
          this.#options.queue.written += bytesWritten;
        }
        const now = this.#options.now();
        if (now - this.#lastSync >= this.#options.syncInterval) {
          this.#lastSync = now;
          await fh.datasync();
        }
      } catch (err) {
        this.#fail(err);
      } finally {
        this.#options.queue.release(bytes);
      }
    });
    return true;
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    const e = err as { code?: unknown; message?: unknown } | undefined;
    const message = typeof e?.message === 'string' ? e.message : String(err);
    this.#failed = { code: typeof e?.code === 'string' ? e.code : 'EIO', message: err instanceof Error ? `${this.file}: ${message}` : message };
    try {
      this.#options.onError(this.#failed);
    } catch {
      // The owner's handler must not throw; the file has stopped either way.
    }
  }
}
