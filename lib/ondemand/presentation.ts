/**
 * One IIS on-demand Smooth Streaming presentation (protocol doc §6.2): a `.ism` server manifest naming
 * `.ismv`/`.isma` files, and the `.ismc` client manifest beside it. The files are read with the
 * simulated encoder's own reader (`openSource`: the `.ism` parser, the per-track fragment index) and a
 * fragment response is that encoder's outgoing fragment with the file's own times (`buildFragment`), so
 * there is one reader and one fragment writer for both.
 *
 * Decisions:
 * - The fragment index comes from scanning every moof of each file once, at open (a few reads per
 *   fragment), not from the `mfra`: a `tfra` gives times and moof offsets only, while a response also
 *   needs the moof and mdat sizes and durations. A presentation stays open (bounded by the catalog), so
 *   the scan is paid once.
 * - Listed times are the tfxd times, with the live point's clamp: a start below 0 (ffmpeg's AAC
 *   priming) is listed at 0 with the duration shortened, since URL times are unsigned. The fragment's
 *   tfxd says the listed time; the samples are the file's.
 * - The `.ismc` is served as its bytes when it exists (what IIS does); it is only rendered from the
 *   media files when there is none.
 * - Sparse tracks (captions, ad markers: `<textstream>`s with `parentTrackName`, as a live archive keeps
 *   them) are text StreamIndexes with their `ParentStreamIndex`, listed with their gaps and events of
 *   duration 0; where `ManifestOutput` asks, a rendered manifest carries their samples in `<f>` (read
 *   from the files once, up to {@link MANIFEST_OUTPUT_MAX} bytes each). Their fragments are served like
 *   any other, without tfrf.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SmoothError } from '../errors';
import { buildFragment } from '../ismv/fragment';
import { FileHandles, Source, SourceTrack, openSource } from '../ismv/source';
import { onDemandSnapshot, shiftedFragment } from '../manifest/ondemand';
import type { ManifestFormatter } from '../manifest/types';
import { FragmentTime, MANIFEST_OUTPUT_MAX, TrackInfo, TrackType } from '../model';

const TYPE_ORDER: Record<TrackType, number> = { video: 0, audio: 1, text: 2 };

/** What opening a presentation needs. */
export interface PresentationOptions {
  /** Absolute root folder: the `.ism`, the `.ismc` and every media file must lie inside it (real paths). */
  root: string;
  /** The handles to read the media files through (the catalog's bounded pool). */
  files: FileHandles;
  /** Renders the client manifest when there is no `.ismc`. */
  formatter: ManifestFormatter;
  /** Largest moof or mdat accepted, in bytes. */
  maxBoxSize: number;
}

/** Size and modification time of a file the presentation was built from; `size` −1 for a missing one. */
export interface FileStamp {
  readonly file: string;
  readonly mtimeMs: number;
  readonly size: number;
}

/** The client manifest as served. */
export interface OnDemandManifest {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
  /** Modification time (ms) of the file it comes from: the `.ismc`, else the `.ism`. */
  readonly lastModified: number;
  /** Whether it is the `.ismc` file's bytes (else it was rendered). */
  readonly fromFile: boolean;
}

/** One QualityLevel of the presentation. */
export interface OnDemandTrack {
  readonly info: TrackInfo;
  readonly source: SourceTrack;
  /** Ticks (its timescale) subtracted from the files' times: the `.ism`'s `timeShift`, else 0. */
  readonly shift: bigint;
  /** Listed fragments (shifted, clamped at 0), in time order; a `manifestOutput` track's with their `payload`. */
  readonly listed: readonly FragmentTime[];
  /** Index into `source.fragments` of each listed fragment. */
  readonly sourceIndex: readonly number[];
  /** Listed time → position in `listed`. */
  readonly byTime: ReadonlyMap<bigint, number>;
}

/** The answer of {@link OnDemandPresentation.lookup}. */
export type OnDemandLookup =
  | { status: 'ok'; track: OnDemandTrack; index: number; etag: string }
  | { status: 'not-found'; reason: string };

/** A fragment response: the moof (tfxd, no tfrf) and the mdat, both as sent. */
export interface OnDemandFragment {
  readonly moof: Buffer;
  readonly mdat: Buffer;
}

/** The lexical and real-path containment of `file` in the root: throws for a file outside it. */
async function checkInside(root: string, realRoot: string, file: string, what: string): Promise<void> {
  const rel = path.relative(root, file);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new SmoothError('ERR_BAD_DEFINITION', `${what} lies outside the media root`);
  }
  // A symbolic link may still lead out: the real path is what gets opened.
  const real = await fs.realpath(file).catch(() => undefined);
  if (real !== undefined && real !== realRoot && !real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep)) {
    throw new SmoothError('ERR_BAD_DEFINITION', `${what} resolves outside the media root`);
  }
}

/** Stats `file`; a missing file gets size −1 (so its appearance is a change). */
export async function stampOf(file: string): Promise<FileStamp> {
  try {
    const st = await fs.stat(file);
    return { file, mtimeMs: st.mtimeMs, size: st.isFile() ? st.size : -1 };
  } catch {
    return { file, mtimeMs: 0, size: -1 };
  }
}

/** Error text without the server's folders: names relative to the root. */
function relativeMessage(root: string, message: string): string {
  return message.split(root + path.sep).join('');
}

/** An open on-demand presentation: its tracks, fragment index and client manifest. */
export class OnDemandPresentation {
  /** Absolute path of the `.ism`. */
  readonly file: string;
  /** The files it was built from, as they were before it was read (or last grew). */
  get stamps(): readonly FileStamp[] {
    return this.#stamps;
  }
  get manifest(): OnDemandManifest {
    return this.#manifest;
  }
  /** Presentation length in 100-ns units (the manifest `Duration`). */
  get duration(): bigint {
    return this.#duration;
  }
  #stamps: FileStamp[];
  #manifest: OnDemandManifest;
  #duration: bigint;
  readonly #formatter: ManifestFormatter;
  /** StreamIndexes in manifest order, each with its QualityLevels by ascending bitrate. */
  readonly streams: ReadonlyArray<{ readonly type: TrackType; readonly name: string; readonly tracks: readonly OnDemandTrack[] }>;
  readonly #source: Source;
  /** Part of every fragment ETag: changes when any file changes. */
  readonly #tag: string;

  private constructor(
    file: string,
    stamps: FileStamp[],
    source: Source,
    streams: OnDemandPresentation['streams'],
    duration: bigint,
    manifest: OnDemandManifest,
    formatter: ManifestFormatter,
  ) {
    this.file = file;
    this.#stamps = stamps;
    this.#source = source;
    this.streams = streams;
    this.#duration = duration;
    this.#manifest = manifest;
    this.#formatter = formatter;
    this.#tag = createHash('sha1').update(JSON.stringify(stamps)).digest('hex').slice(0, 16);
  }

  /**
   * Opens the presentation of the `.ism` at `ism` (absolute, inside `o.root`).
   * @throws SmoothError ERR_BAD_DEFINITION naming the problem (relative to the root): an unreadable or
   *   invalid `.ism`, a media file outside the root, missing, not fragmented or not describable
   */
  static async open(ism: string, o: PresentationOptions): Promise<OnDemandPresentation> {
    const realRoot = await fs.realpath(o.root).catch(() => o.root);
    try {
      await checkInside(o.root, realRoot, ism, path.basename(ism));
      const ismStamp = await stampOf(ism);
      // Media files are stamped before they are scanned: a change during the scan shows at the next check.
      const media: FileStamp[] = [];
      const source = await openSource([ism], {
        maxBoxSize: o.maxBoxSize,
        // An archive being written is served up to its last complete fragment (start-over); a
        // finished file is indexed from its tfra.
        growing: true,
        randomAccess: true,
        sparse: true,
        files: o.files,
        checkMedia: async (file) => {
          await checkInside(o.root, realRoot, file, `media file ${path.relative(path.dirname(ism), file)}`);
          if (!media.some((m) => m.file === file)) media.push(await stampOf(file));
        },
      });
      const named = source.metas.get('clientManifestRelativePath');
      const ismc = path.resolve(path.dirname(ism), named || `${path.basename(ism, path.extname(ism))}.ismc`);
      await checkInside(o.root, realRoot, ismc, 'the client manifest');
      const ismcStamp = await stampOf(ismc);
      const streams = group(source.tracks, timeShiftOf(source.metas.get('timeShift')));
      const body = ismcStamp.size >= 0 ? await readLimited(ismc, o.maxBoxSize) : undefined;
      // The samples are only needed for a manifest rendered here.
      if (!body) for (const stream of streams) for (const t of stream.tracks) await loadPayloads(source, t);
      const snapshot = snapshotOf(streams);
      const duration = snapshot.duration;
      let manifest: OnDemandManifest;
      if (body) {
        manifest = { body, contentType: o.formatter.contentType, etag: etagOf(body), lastModified: ismcStamp.mtimeMs, fromFile: true };
      } else {
        const rendered = Buffer.from(o.formatter.render(snapshot), 'utf8');
        manifest = { body: rendered, contentType: o.formatter.contentType, etag: etagOf(rendered), lastModified: ismStamp.mtimeMs, fromFile: false };
      }
      return new OnDemandPresentation(ism, [ismStamp, ismcStamp, ...media], source, streams, duration, manifest, o.formatter);
    } catch (err) {
      const message = relativeMessage(o.root, (err as Error).message);
      throw new SmoothError('ERR_BAD_DEFINITION', `on-demand presentation ${relativeMessage(o.root, ism)}: ${message}`);
    }
  }

  /** The media files it reads. */
  get mediaFiles(): string[] {
    return this.stamps.slice(2).map((s) => s.file);
  }

  /**
   * Checks its files again: `same` when none changed; `grown` when only media files grew, none of them
   * had its `mfra` and the manifest is not an `.ismc` (a live archive being written: start-over), after
   * indexing their new complete fragments from where the last scan stopped and rendering the manifest
   * again; `changed` otherwise (a file appeared, went away, shrank or was rewritten: open it again).
   */
  async refresh(): Promise<'same' | 'grown' | 'changed'> {
    const old = this.#stamps;
    const now = await Promise.all(old.map((s) => stampOf(s.file)));
    const moved = (s: FileStamp, i: number): boolean => s.size !== old[i]!.size || s.mtimeMs !== old[i]!.mtimeMs;
    if (!now.some(moved)) return 'same';
    // [0] is the .ism and [1] the .ismc (size -1 while there is none); the media files follow.
    const grew =
      this.#source.unfinished && !moved(now[0]!, 0) && !moved(now[1]!, 1) && !this.#manifest.fromFile && now.every((s, i) => i < 2 || s.size >= old[i]!.size);
    if (!grew) return 'changed';
    try {
      await this.#source.grow();
    } catch {
      return 'changed';
    }
    try {
      for (const stream of this.streams) {
        for (const t of stream.tracks) {
          extendTrack(t);
          await loadPayloads(this.#source, t);
        }
      }
    } catch {
      return 'changed';
    }
    const snapshot = snapshotOf(this.streams);
    const body = Buffer.from(this.#formatter.render(snapshot), 'utf8');
    const lastModified = Math.max(...now.slice(2).map((s) => s.mtimeMs));
    this.#manifest = { body, contentType: this.#formatter.contentType, etag: etagOf(body), lastModified, fromFile: false };
    this.#duration = snapshot.duration;
    this.#stamps = now;
    return 'grown';
  }

  /**
   * The fragment a URL names: the StreamIndex `streamName`, the QualityLevel of `bitrate` and custom
   * attributes, the fragment listed at exactly `time`.
   */
  lookup(bitrate: number, customAttributes: ReadonlyArray<readonly [string, string]>, streamName: string, time: bigint): OnDemandLookup {
    const stream = this.streams.find((s) => s.name === streamName);
    if (!stream) return { status: 'not-found', reason: `no track named ${streamName}` };
    const attrs = attributesKey(customAttributes);
    const track = stream.tracks.find((t) => t.info.bitrate === bitrate && attributesKey(t.info.customAttributes) === attrs);
    if (!track) return { status: 'not-found', reason: `no quality level ${bitrate} for ${streamName}` };
    const index = track.byTime.get(time);
    if (index === undefined) return { status: 'not-found', reason: `no fragment of ${streamName} at ${time}` };
    const level = stream.tracks.indexOf(track);
    return { status: 'ok', track, index, etag: `"o${this.#tag}.${stream.name}.${level}.${time}"` };
  }

  /**
   * Reads a fragment {@link lookup} found and builds its response: the file's moof with a tfxd of the
   * listed time and duration (no tfrf), and its mdat as read.
   * @throws EncoderError ERR_ENCODER_INPUT when the file changed under it
   */
  async read(found: Extract<OnDemandLookup, { status: 'ok' }>): Promise<OnDemandFragment> {
    const { track, index } = found;
    const sourceIndex = track.sourceIndex[index]!;
    const listed = track.listed[index]!;
    const raw = await this.#source.read(track.source, sourceIndex);
    const plan = { index: sourceIndex, time: listed.time, duration: listed.duration, shift: -track.shift, overlap: 0n };
    const out = buildFragment(raw, track.source, plan, track.source.fileTrackId, sourceIndex + 1);
    return { moof: out.moof, mdat: out.mdat };
  }
}

function attributesKey(attributes: ReadonlyArray<readonly [string, string]>): string {
  return attributes.map(([k, v]) => `${k}=${v}`).join(',');
}

function etagOf(body: Buffer): string {
  return `"m${createHash('sha1').update(body).digest('hex').slice(0, 20)}"`;
}

/** A file's bytes, refused beyond `limit` (a client manifest is a few hundred KB). */
async function readLimited(file: string, limit: number): Promise<Buffer | undefined> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  if (st.size > limit) throw new Error(`${path.basename(file)} is ${st.size} bytes, larger than ${limit}`);
  return fs.readFile(file);
}

/** Root timescale of `timeShift`. */
const ROOT_TIMESCALE = 10_000_000n;

/**
 * The `.ism` meta `timeShift`: 10 MHz ticks to subtract from every time of the media files, so that a
 * presentation cut from a live event starts at 0 (the archive writes it when a presentation is done).
 */
function timeShiftOf(value: string | undefined): bigint {
  if (value === undefined) return 0n;
  if (!/^\d{1,19}$/.test(value) || BigInt(value) >= 2n ** 63n) throw new Error(`meta timeShift="${value}" is not a number of 10 MHz ticks`);
  return BigInt(value);
}

/**
 * A track's listed fragments: tfxd times less the shift, by the rule the archive's `.ismc` follows
 * ({@link shiftedFragment}). A sparse track may list none.
 */
function listTrack(source: SourceTrack, timeShift: bigint): OnDemandTrack {
  const scaled = timeShift * BigInt(source.info.timescale);
  if (scaled % ROOT_TIMESCALE !== 0n) throw new Error(`meta timeShift=${timeShift} is not a whole number of ticks at timescale ${source.info.timescale}`);
  const track: OnDemandTrack = { info: source.info, source, shift: scaled / ROOT_TIMESCALE, listed: [], sourceIndex: [], byTime: new Map() };
  extendTrack(track);
  if (track.listed.length === 0 && source.info.parent === undefined) {
    throw new Error(`${path.basename(source.file)}: track ${source.fileTrackId} has no fragment after time 0`);
  }
  return track;
}

/** Lists the fragments of the track's source that it does not list yet (its file grew). */
function extendTrack(track: OnDemandTrack): void {
  const listed = track.listed as FragmentTime[];
  const sourceIndex = track.sourceIndex as number[];
  const byTime = track.byTime as Map<bigint, number>;
  const fragments = track.source.fragments;
  const sparse = track.info.parent !== undefined;
  for (let i = sourceIndex.length > 0 ? sourceIndex[sourceIndex.length - 1]! + 1 : 0; i < fragments.length; i++) {
    const f = fragments[i]!;
    const at = shiftedFragment(f.time, f.duration, track.shift, sparse);
    if (!at) continue;
    byTime.set(at.time, listed.length);
    listed.push(at);
    sourceIndex.push(i);
  }
}

/** Listed fragments of a `manifestOutput` track whose samples {@link loadPayloads} has read, and their bytes. */
const payloadsRead = new WeakMap<OnDemandTrack, { count: number; bytes: number }>();

/** Bytes of samples a track's manifest carries at most, as a live archive keeps (the rest is listed without). */
const PAYLOAD_BYTES = 4 * 2 ** 20;

/**
 * Reads the samples a `manifestOutput` track's listed fragments carry in a rendered manifest, for those
 * that have none yet (a sample over {@link MANIFEST_OUTPUT_MAX} bytes stays out, as live, and so do
 * those beyond {@link PAYLOAD_BYTES} a track).
 */
async function loadPayloads(source: Source, track: OnDemandTrack): Promise<void> {
  if (!track.info.manifestOutput) return;
  const listed = track.listed as FragmentTime[];
  const read = payloadsRead.get(track) ?? { count: 0, bytes: 0 };
  payloadsRead.set(track, read);
  // The listing only grows at its end: what was read (or found too large) is not read again.
  for (; read.count < listed.length && read.bytes < PAYLOAD_BYTES; read.count++) {
    const payload = await source.samples(track.source, track.sourceIndex[read.count]!, MANIFEST_OUTPUT_MAX);
    if (!payload || read.bytes + payload.length > PAYLOAD_BYTES) continue;
    read.bytes += payload.length;
    listed[read.count] = { time: listed[read.count]!.time, duration: listed[read.count]!.duration, payload };
  }
}

/** The manifest snapshot of the presentation's StreamIndexes. */
function snapshotOf(streams: OnDemandPresentation['streams']): ReturnType<typeof onDemandSnapshot> {
  return onDemandSnapshot(streams.flatMap((g) => g.tracks.map((t) => ({ info: t.info, fragments: t.listed }))));
}

/** StreamIndexes as the live point forms them: by type and name, video, audio then text, bitrates ascending. */
function group(tracks: readonly SourceTrack[], timeShift: bigint): Array<{ type: TrackType; name: string; tracks: OnDemandTrack[] }> {
  const groups: Array<{ type: TrackType; name: string; tracks: OnDemandTrack[] }> = [];
  for (const t of tracks) {
    let g = groups.find((x) => x.type === t.info.type && x.name === t.info.name);
    if (!g) groups.push((g = { type: t.info.type, name: t.info.name, tracks: [] }));
    // Tracks of one StreamIndex with different timescales are refused by the manifest snapshot.
    g.tracks.push(listTrack(t, timeShift));
  }
  for (const g of groups) g.tracks.sort((a, b) => a.info.bitrate - b.info.bitrate);
  return groups.sort((a, b) => TYPE_ORDER[a.type] - TYPE_ORDER[b.type]);
}

