/**
 * The live archive (protocol doc §6.1): a point whose `publishing` setting lists `Archives` writes each
 * session to disk as it arrives, as standard on-demand Smooth Streaming presentations: one
 * `.ismv`/`.isma` per track, the `.ism` server manifest and the `.ismc` client manifest; with
 * `archiveSegmentLength`, consecutive presentations that each play on their own.
 *
 * The archive follows the point's stored fragments (its `fragment` events), so what a reconnect resent
 * or a restarted encoder repeated is archived once, as it is served. It never holds up ingest: writes
 * queue on the files, bounded by one queue for the origin, and a failure (a full or read-only disk, a
 * disk too slow for the queue) stops that session's archive with an `archive` event while the point
 * goes on serving.
 *
 * Sparse tracks (captions, ad markers) are archived like the others, a file each with every event
 * (gaps and events of duration 0 included), but they follow the media: a session's archive starts with
 * its first media fragment, an event never opens a segment the media has not reached, and a segment is
 * complete once its media tracks moved past it, however long a sparse track stays silent. The samples
 * a `manifestOutput` track's `.ismc` carries (`<f>`) are kept until the presentation is done, up to
 * {@link PAYLOAD_BYTES} per file.
 */
import { mkdir, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import createDebug from 'debug';
import type { MediaFragment, TrackHeader } from '../media';
import type { ManifestFormatter } from '../manifest/types';
import { FragmentTime, MANIFEST_OUTPUT_MAX, TrackInfo } from '../model';
import type { PublishingPoint } from '../point';
import { ArchiveEvent, PointState, describeError } from '../point/events';
import { ArchiveFailure, TrackFile, WriteQueue, archiveHeader } from './file';
import { presentationName, sessionFolder, trackFileName } from './layout';
import { ManifestTrack, writeManifests } from './manifests';
import { mendFolder, readJournal, writeJournal } from './recover';
import { Source, SourceTrack, openSource } from '../ismv/source';

export { FragmentIndex, WriteQueue, TrackFile, archiveHeader, movieFragmentRandomAccess } from './file';
export type { ArchiveFailure, RandomAccess, TrackFileOptions } from './file';
export { sessionFolder, sessionName, trackFileName, presentationName } from './layout';
export type { ArchiveEvent } from '../point/events';
export { JOURNAL, mendFile, mendFolder } from './recover';
export type { MendedFile } from './recover';

const debug = createDebug('live-smooth:archive');


/** Archives kept in {@link Archiver.list} per point (the newest), besides those being written. */
const LISTED = 64;
/** Session folders remembered to keep names unique (sessions of the same second are what it is for). */
const MAX_FOLDERS = 1024;
/**
 * Bytes of `manifestOutput` samples kept per file for its `.ismc` (thousands of SCTE-35 messages); the
 * events after them are listed without `<f>`, and clients fetch them.
 */
const PAYLOAD_BYTES = 4 * 2 ** 20;
/** States after which a session's archive is complete. */
const ENDS: ReadonlySet<PointState> = new Set(['Stopped', 'ShuttingDown', 'Idle', 'Error']);

/** What the archiver needs from the origin. */
export interface ArchiverOptions {
  /** Folder of archives whose point names no `archivePath`. */
  root: string;
  /** Folder that a relative `archivePath` is resolved against (the media root). */
  base: string;
  /** Bytes of archive writes that may wait for the disk, over every point. */
  queueBytes: number;
  /** ms between `fdatasync`s of a file being written. */
  syncInterval: number;
  /** Renders the `.ismc`. */
  manifest: ManifestFormatter;
  now: () => number;
}

/** One archived presentation (a session, or one segment of it) as the management API shows it. */
export interface ArchiveStatus {
  point: string;
  /** Absolute folder of the presentation. */
  folder: string;
  /** The `.ism` in it. */
  ism: string;
  /** 0 for an unsegmented archive, else the segment number (from 0). */
  segment: number;
  /** Wall-clock ms when the session began. */
  startedAt: number;
  state: 'writing' | 'finished' | 'failed';
  error?: ArchiveFailure;
  tracks: number;
  fragments: number;
  bytes: number;
  /** Seconds of media (the longest track). */
  duration: number;
}

/** A track's file in a segment. */
interface SegmentFile {
  file: TrackFile;
  info: TrackInfo;
  /** A `manifestOutput` track's samples by fragment time, for the `.ismc`, and their bytes. */
  payloads?: { byTime: Map<bigint, Buffer>; bytes: number };
}

interface Segment {
  index: number;
  folder: string;
  /** mkdir of the folder; files are created after it. */
  ready: Promise<void>;
  files: Map<string, SegmentFile>;
  state: ArchiveStatus['state'];
  error?: ArchiveFailure;
  /** The manifests written when the segment is done (resolves either way). */
  done?: Promise<void>;
  /** The last manifest write queued (never rejects). */
  manifests: Promise<void>;
  /** Finished or failed, and in the list of past archives. */
  listed?: boolean;
}

interface Session {
  point: PublishingPoint;
  folder: string;
  startedAt: number;
  /** `archiveSegmentLength`, seconds; 0 = one presentation. */
  length: bigint;
  /** Whole seconds of the session's first fragment: segment 0 starts there. */
  origin: bigint;
  /** Segment each track writes to now. */
  current: Map<string, number>;
  /** The header of each track archived (looked up once per track, not per fragment). */
  headers: Map<string, TrackHeader>;
  segments: Map<number, Segment>;
  failed: boolean;
}

/** Whether a point's settings ask for an archive. */
function archives(point: PublishingPoint): boolean {
  return point.settings.publishing.split(';').includes('Archives');
}

/**
 * Writes the archives of an origin's points. The origin creates it with its options and hands it every
 * point it creates ({@link Archiver.watch}) and every point it closes ({@link Archiver.end}).
 */
export class Archiver {
  readonly #options: ArchiverOptions;
  readonly #queue: WriteQueue;
  readonly #emit: (e: ArchiveEvent) => void;
  readonly #sessions = new Map<string, Session>();
  /** Sessions that ended and whose presentations are still being finished. */
  readonly #closing = new Set<Session>();
  /** Finished or failed presentations, newest last, per point. */
  readonly #past = new Map<string, ArchiveStatus[]>();
  /** Manifest writes and file closes still running. */
  readonly #pending = new Set<Promise<void>>();
  /** Session folders this process used, newest last (at most {@link MAX_FOLDERS}): never used twice. */
  readonly #folders = new Set<string>();
  /** Folders being written now, and those an earlier process left unfinished: the journal's content. */
  readonly #writing = new Set<string>();
  readonly #unfinished = new Set<string>();
  /** The last journal write queued (never rejects). */
  #journal: Promise<void> = Promise.resolve();
  readonly #ended = { finished: 0, failed: 0 };
  /** Resolves when the archives an earlier process left unfinished are mended. */
  readonly recovered: Promise<void>;

  /** @param emit - receives `archive` events (the origin emits them; it isolates its listeners) */
  constructor(options: ArchiverOptions, emit: (e: ArchiveEvent) => void) {
    this.#options = options;
    this.#queue = new WriteQueue(options.queueBytes);
    this.#emit = emit;
    this.recovered = this.#recover();
    this.#track(this.recovered);
  }

  /** Bytes waiting for the disk now, the bound, and the bytes written since the origin started. */
  get queue(): { pending: number; max: number; written: number } {
    return { pending: this.#queue.pending, max: this.#queue.max, written: this.#queue.written };
  }

  /** Presentations being written now, and those finished and failed since the origin started. */
  get counts(): { writing: number; finished: number; failed: number } {
    let writing = 0;
    for (const s of [...this.#sessions.values(), ...this.#closing]) for (const seg of s.segments.values()) if (!seg.listed) writing++;
    return { writing, ...this.#ended };
  }

  /** Follows `point`: archives its sessions while its settings list `Archives`. */
  watch(point: PublishingPoint): void {
    point.on('fragment', (e) => this.#fragment(point, e.track, e.fragment));
    point.on('state', (e) => {
      if (ENDS.has(e.state)) this.end(point.path, e.reason ?? e.state);
    });
  }

  /** Finishes the archive of `point`'s session, if one is being written (the point stopped or went away). */
  end(point: string, reason: string): void {
    const s = this.#sessions.get(point);
    if (!s) return;
    this.#sessions.delete(point);
    // Listed as being written until its files are closed and its manifests written.
    this.#closing.add(s);
    debug('%s: session archive ends (%s)', point, reason);
    for (const seg of s.segments.values()) this.#finishSegment(s, seg);
  }

  /** Every archive being written and the newest finished ones (of `point`, or of all points). */
  list(point?: string): ArchiveStatus[] {
    const out: ArchiveStatus[] = [];
    for (const [p, past] of this.#past) if (point === undefined || p === point) out.push(...past);
    for (const s of [...this.#sessions.values(), ...this.#closing]) {
      if (point !== undefined && s.point.path !== point) continue;
      for (const seg of s.segments.values()) if (!seg.listed) out.push(this.#status(s, seg));
    }
    return out;
  }

  /** Resolves when every file closed and every manifest written so far is on disk. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Ends every session (the origin closes). */
  close(): Promise<void> {
    for (const p of [...this.#sessions.keys()]) this.end(p, 'origin closed');
    return this.idle();
  }

  #fragment(point: PublishingPoint, key: string, f: MediaFragment): void {
    let s = this.#sessions.get(point.path);
    if (!s) {
      if (!archives(point)) return;
      s = this.#open(point, key, f);
      if (!s) return;
    }
    if (s.failed) return;
    let header = s.headers.get(key);
    if (!header) {
      header = point.headers.find((h) => h.key === key);
      if (!header) return;
      s.headers.set(key, header);
    }
    const seg = this.#segmentFor(s, header, f);
    let entry = seg.files.get(key);
    if (!entry) {
      entry = this.#addFile(s, seg, header);
      if (!entry) return;
    }
    const count = entry.file.fragments.count;
    entry.file.append(f);
    const p = entry.payloads;
    if (p && entry.file.fragments.count > count && f.dataSize <= MANIFEST_OUTPUT_MAX && p.bytes + f.dataSize <= PAYLOAD_BYTES) {
      p.byTime.set(f.time, Buffer.from(f.data));
      p.bytes += f.dataSize;
    }
  }

  #open(point: PublishingPoint, key: string, f: MediaFragment): Session | undefined {
    const header = point.headers.find((h) => h.key === key);
    // A caption or a splice before the media has nothing to belong to yet.
    if (!header || header.info.parent !== undefined) return undefined;
    const startedAt = this.#options.now();
    const settings = point.settings;
    const root = settings.archivePath ? path.resolve(this.#options.base, settings.archivePath) : this.#options.root;
    let folder: string;
    try {
      folder = sessionFolder(root, point.path, startedAt);
    } catch (err) {
      debug('%s: no archive: %s', point.path, describeError(err));
      return undefined;
    }
    // Two sessions within a second (an encoder restart with encoderRestart=reset) get two folders.
    for (let i = 2, base = folder; this.#folders.has(folder); i++) folder = `${base}-${i}`;
    this.#folders.add(folder);
    if (this.#folders.size > MAX_FOLDERS) this.#folders.delete(this.#folders.values().next().value!);
    const ts = BigInt(header.info.timescale);
    const s: Session = {
      point,
      folder,
      startedAt,
      length: BigInt(settings.archiveSegmentLength),
      origin: f.time / ts,
      current: new Map(),
      headers: new Map(),
      segments: new Map(),
      failed: false,
    };
    this.#sessions.set(point.path, s);
    debug('%s: archiving the session to %s', point.path, folder);
    return s;
  }

  /**
   * The segment a fragment belongs to: each track cuts at its first fragment that lies mostly after
   * the segment boundary (whole `archiveSegmentLength`s after the session's first fragment), so every
   * track cuts within half a fragment of the others without waiting for them; never backwards.
   */
  #segmentFor(s: Session, header: TrackHeader, f: MediaFragment): Segment {
    const key = header.key;
    let index = 0;
    if (s.length > 0n) {
      const ts = BigInt(header.info.timescale);
      const middle = f.time + f.duration / 2n - s.origin * ts;
      index = middle > 0n ? Number(middle / (s.length * ts)) : 0;
    }
    // An event goes with the media it came with: never into a segment no media track has reached.
    if (header.info.parent !== undefined) index = Math.min(index, this.#mediaSegment(s));
    const before = s.current.get(key);
    if (before !== undefined && index < before) index = before;
    // A segment already complete takes no new track: the track joins the newest segment.
    if (s.segments.get(index)?.done) {
      const newest = Math.max(...s.segments.keys());
      index = s.segments.get(newest)!.done ? newest + 1 : newest;
    }
    let seg = s.segments.get(index);
    if (!seg) {
      const folder = s.length > 0n ? path.join(s.folder, String(index)) : s.folder;
      const made = { index, folder, ready: mkdir(folder, { recursive: true }).then(() => undefined), files: new Map(), state: 'writing' as const, manifests: Promise.resolve() };
      seg = made;
      made.ready.catch((err: unknown) => this.#failSession(s, failureOf(err)));
      s.segments.set(index, made);
      this.#writing.add(folder);
      this.#saveJournal();
      this.#emitEvent(s, made);
    }
    s.current.set(key, index);
    if (before !== undefined && before !== index) {
      const old = s.segments.get(before)?.files.get(key);
      if (old) this.#track(old.file.finish());
      this.#maybeDone(s, before);
    }
    return seg;
  }

  /** The newest segment a media track writes to. */
  #mediaSegment(s: Session): number {
    let newest = 0;
    for (const [key, index] of s.current) if (index > newest && s.headers.get(key)?.info.parent === undefined) newest = index;
    return newest;
  }

  #addFile(s: Session, seg: Segment, header: TrackHeader): SegmentFile | undefined {
    const taken = new Set([...seg.files.values()].map((e) => path.basename(e.file.file).toLowerCase()));
    const name = trackFileName(header.info, taken);
    let headerBytes: Buffer;
    try {
      headerBytes = archiveHeader(header.info, header.init, s.point.settings.title);
    } catch (err) {
      this.#failSession(s, { code: 'ERR_ARCHIVE_HEADER', message: describeError(err) });
      return undefined;
    }
    const file = new TrackFile(path.join(seg.folder, name), headerBytes, {
      queue: this.#queue,
      syncInterval: this.#options.syncInterval,
      now: this.#options.now,
      onError: (failure) => this.#failSession(s, failure),
      ready: seg.ready,
    });
    const entry: SegmentFile = { file, info: header.info };
    if (header.info.manifestOutput) entry.payloads = { byTime: new Map(), bytes: 0 };
    seg.files.set(header.key, entry);
    this.#track(this.#writeManifests(s, seg, false));
    return entry;
  }

  /**
   * A segment every media track of which moved past it is complete: its files end and its manifests are
   * written. A sparse track does not hold it open: its next event may be an hour away.
   */
  #maybeDone(s: Session, index: number): void {
    const seg = s.segments.get(index);
    if (!seg || seg.done) return;
    for (const [key, e] of seg.files) if (s.current.get(key) === index && e.info.parent === undefined) return;
    this.#finishSegment(s, seg);
  }

  #finishSegment(s: Session, seg: Segment): void {
    if (seg.done) return;
    const files = [...seg.files.values()].map((e) => e.file.finish());
    seg.done = Promise.all(files).then(async () => {
      if (seg.state !== 'failed') await this.#writeManifests(s, seg, true);
      if (seg.state === 'writing') seg.state = 'finished';
      this.#ended[seg.state]++;
      this.#writing.delete(seg.folder);
      this.#saveJournal();
      this.#emitEvent(s, seg);
      const past = this.#past.get(s.point.path) ?? [];
      past.push(this.#status(s, seg));
      if (past.length > LISTED) past.splice(0, past.length - LISTED);
      this.#past.set(s.point.path, past);
      seg.listed = true;
      if (this.#closing.has(s) && [...s.segments.values()].every((x) => x.listed)) this.#closing.delete(s);
    });
    this.#track(seg.done);
  }

  /**
   * Writes the segment's `.ism` (when a track joins, so a presentation being written can be found) and,
   * once it is complete, its `.ismc`: each through a temporary file and a rename, never half written,
   * one write after the other.
   */
  #writeManifests(s: Session, seg: Segment, complete: boolean): Promise<void> {
    seg.manifests = seg.manifests.then(() => this.#manifestsNow(s, seg, complete));
    return seg.manifests;
  }

  async #manifestsNow(s: Session, seg: Segment, complete: boolean): Promise<void> {
    try {
      await seg.ready;
      const tracks = [...seg.files.values()].map((e) => ({
        info: e.info,
        src: path.basename(e.file.file),
        fragments: complete ? withPayloads(e.file.fragments.list(), e.payloads?.byTime) : [],
      }));
      await writeManifests(seg.folder, presentationName(s.point.path), tracks, complete ? this.#options.manifest : undefined);
      // The complete .ismc carries the samples now: they need not stay in memory.
      if (complete) for (const e of seg.files.values()) e.payloads = undefined;
    } catch (err) {
      this.#failSegment(s, seg, failureOf(err));
    }
  }

  #failSession(s: Session, failure: ArchiveFailure): void {
    if (s.failed) return;
    s.failed = true;
    debug('%s: archive stopped: %s %s', s.point.path, failure.code, failure.message);
    for (const seg of s.segments.values()) this.#failSegment(s, seg, failure);
    for (const seg of s.segments.values()) this.#finishSegment(s, seg);
  }

  #failSegment(s: Session, seg: Segment, failure: ArchiveFailure): void {
    if (seg.state === 'failed') return;
    seg.state = 'failed';
    seg.error = failure;
    this.#emitEvent(s, seg);
  }

  #emitEvent(s: Session, seg: Segment): void {
    this.#emit({ point: s.point.path, folder: seg.folder, segment: seg.index, state: seg.state, code: seg.error?.code, message: seg.error?.message });
  }

  #status(s: Session, seg: Segment): ArchiveStatus {
    let fragments = 0;
    let bytes = 0;
    let duration = 0;
    for (const { file, info } of seg.files.values()) {
      const n = file.fragments.count;
      fragments += n;
      bytes += file.size;
      if (n > 0 && info.parent === undefined) {
        const end = file.fragments.time(n - 1) + file.fragments.duration(n - 1);
        duration = Math.max(duration, Number(end - file.fragments.time(0)) / info.timescale);
      }
    }
    return {
      point: s.point.path,
      folder: seg.folder,
      ism: path.join(seg.folder, `${presentationName(s.point.path)}.ism`),
      segment: seg.index,
      startedAt: s.startedAt,
      state: seg.state,
      ...(seg.error ? { error: seg.error } : {}),
      tracks: seg.files.size,
      fragments,
      bytes,
      duration,
    };
  }

  /**
   * Mends what the journal says an earlier process was writing (see `recover.ts`): each file cut after
   * its last complete fragment and closed with an `mfra`, then the folder's `.ismc` written.
   */
  async #recover(): Promise<void> {
    for (const f of await readJournal(this.#options.root)) this.#unfinished.add(f);
    for (const folder of [...this.#unfinished]) {
      let event: ArchiveEvent;
      try {
        const mended = await mendFolder(folder);
        const ism = (await readdir(folder)).find((n) => /\.ism$/i.test(n));
        if (!ism) throw Object.assign(new Error(`${folder} has no .ism`), { code: 'ENOENT' });
        const source = await openSource([path.join(folder, ism)], { sparse: true });
        const tracks: ManifestTrack[] = [];
        try {
          for (const t of source.tracks) tracks.push({ info: t.info, src: path.basename(t.file), fragments: await recoveredFragments(source, t) });
        } finally {
          await source.close();
        }
        await writeManifests(folder, ism.replace(/\.ism$/i, ''), tracks, this.#options.manifest);
        const cut = mended.reduce((n, m) => n + m.cut, 0);
        const kept = mended.reduce((n, m) => n + m.fragments, 0);
        debug('recovered %s: %d fragments kept, %d bytes of partial fragments cut', folder, kept, cut);
        event = { point: '', folder, segment: 0, state: 'finished', message: `recovered after an unclean stop: ${kept} fragments kept, ${cut} bytes cut` };
      } catch (err) {
        const failure = failureOf(err);
        debug('cannot recover %s: %s', folder, failure.message);
        event = { point: '', folder, segment: 0, state: 'failed', ...failure };
      }
      this.#unfinished.delete(folder);
      this.#saveJournal();
      this.#emit(event);
    }
  }

  /** Queues a write of the journal with the folders being written and those still to mend. */
  #saveJournal(): void {
    this.#journal = this.#journal.then(async () => {
      try {
        await mkdir(this.#options.root, { recursive: true });
        await writeJournal(this.#options.root, [...this.#unfinished, ...this.#writing]);
      } catch (err) {
        debug('cannot write the archive journal: %s', describeError(err));
      }
    });
    this.#track(this.#journal);
  }

  #track(p: Promise<void>): void {
    const tracked = p.catch(() => undefined).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}

/** `list` with each fragment's sample from `payloads` (a `manifestOutput` track's), where it has one. */
function withPayloads(list: FragmentTime[], payloads: ReadonlyMap<bigint, Buffer> | undefined): FragmentTime[] {
  if (!payloads || payloads.size === 0) return list;
  return list.map((f) => {
    const payload = payloads.get(f.time);
    return payload ? { ...f, payload } : f;
  });
}

/** A mended track's fragments, a `manifestOutput` track's with their samples read back from its file. */
async function recoveredFragments(source: Source, t: SourceTrack): Promise<FragmentTime[]> {
  const out: FragmentTime[] = [];
  let bytes = 0;
  for (const [i, f] of t.fragments.entries()) {
    const payload = t.info.manifestOutput && bytes < PAYLOAD_BYTES ? await source.samples(t, i, MANIFEST_OUTPUT_MAX) : undefined;
    if (payload && bytes + payload.length <= PAYLOAD_BYTES) {
      bytes += payload.length;
      out.push({ time: f.time, duration: f.duration, payload });
    } else {
      out.push({ time: f.time, duration: f.duration });
    }
  }
  return out;
}

/** A thrown file-system error as an archive failure. */
function failureOf(err: unknown): ArchiveFailure {
  const code = (err as { code?: unknown } | undefined)?.code;
  return { code: typeof code === 'string' ? code : 'EIO', message: describeError(err) };
}
