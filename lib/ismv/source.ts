/**
 * Smooth presentations as the simulated encoder, the on-demand server and the archive's recovery read
 * them: fragmented MP4 files (`.ismv`/`.isma` as ffmpeg's `-f ismv` or IIS
 * write them) and on-demand presentations (an `.ism` server manifest naming such files), read into a
 * list of tracks and, per track, an index of its fragments. Sample bytes stay in the files: a fragment
 * is read when it is sent, so memory holds a few fragments whatever the file size.
 *
 * Parsing uses the library's own box reader and payload parsers; the track descriptions come from the
 * same code the ingest uses (`describeTracks`), fed with a Live Server Manifest built from what the
 * files (and the `.ism`) say.
 */
import { FileHandle, open, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseMovieFragment } from '../ingest/fragment';
import { TrackDescription, LsmElement, describeTracks, parseLiveServerManifest } from '../ingest/header';
import { TrackInfo, TrackType, trackKey } from '../model';
import type { Trex } from '../mp4/boxes';
import { Box, childrenOf } from '../mp4/reader';
import { EncoderError, isSmoothError } from '../errors';
import { SmilTrack, renderSmil } from './lsm';
import { FileHandles, ScanState, ScannedFile, SourceFragment, inputError, readAt, readFragmentAt, scanBoxes, scanFile, soleBox } from './scan';

export type { FileHandles, SourceFragment } from './scan';

/** One track of the input. */
export interface SourceTrack {
  /** The file it comes from (as given, or resolved against its `.ism`). */
  file: string;
  /** Its `track_ID` in that file. */
  fileTrackId: number;
  /** What the client manifest will say about it; `bitrate` from the `.ism`, the file or the average. */
  info: TrackInfo;
  /** Raw `trak` of the file's moov (own copy). */
  trak: Buffer;
  /** Raw `trex` for the track, when the moov has one (own copy). */
  trex: Buffer | undefined;
  /** The trex's sample defaults, parsed. */
  defaults: Trex | undefined;
  /** Raw `mvhd` of the file's moov (own copy). */
  mvhd: Buffer;
  /** Fragments in time order (a sparse track's may leave gaps, last 0 ticks, or be none at all). */
  fragments: readonly SourceFragment[];
}

/** A fragment as read from its file: the moof, the mdat, and the bytes between them. */
export interface RawFragment {
  moof: Box;
  mdat: Box;
  /** Bytes of other boxes between the moof and the mdat (they are not sent). */
  gap: number;
}


/** Options of {@link openSource}. */
export interface SourceOptions {
  /** Largest moof or mdat accepted, in bytes (the library's `maxBoxSize` default). Default 32 MiB. */
  maxBoxSize?: number;
  /**
   * File handles to scan and read through (not closed by {@link Source.close}). Default: one handle
   * per file, open until the source closes.
   */
  files?: FileHandles;
  /**
   * Index a finished file (one that ends with an `mfra`) from its `tfra`s: one `moof` read per track
   * instead of every `moof`; each fragment's sizes are learnt when it is first read. A file without a
   * usable `tfra` is scanned. Default false (the encoder reads every fragment anyway).
   */
  randomAccess?: boolean;
  /**
   * The files may still be being written (a live archive, start-over): an incomplete last fragment
   * ends the index instead of failing the file. Default false: a truncated file is an input error.
   */
  growing?: boolean;
  /**
   * Called with each media file an `.ism` names (resolved) before it is opened; throws to refuse it
   * (e.g. a `src` that leaves the server's root).
   */
  checkMedia?: (file: string, ism: string) => void | Promise<void>;
  /**
   * Read the sparse tracks (captions, ad markers: `parentTrackName`) an `.ism` or a file's Live Server
   * Manifest describes, as the on-demand server and the archive's recovery do. Default false: the
   * simulated encoder replays media, and makes up its sparse tracks itself.
   */
  sparse?: boolean;
}

/** The default {@link FileHandles}: each file opened once, kept open until closed. */
class OpenFiles implements FileHandles {
  readonly #handles = new Map<string, Promise<FileHandle>>();

  async use<T>(file: string, fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    let fh = this.#handles.get(file);
    if (!fh) {
      fh = open(file, 'r');
      this.#handles.set(file, fh);
      // A failed open is not kept: the next use tries again.
      fh.catch(() => this.#handles.get(file) === fh && this.#handles.delete(file));
    }
    return fn(await fh);
  }

  async close(): Promise<void> {
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()));
  }
}


/** A track chosen from a file, before it is described. */
interface Pick {
  type: TrackType;
  trackId: number;
  bitrate: number | undefined;
  /** Params for the Live Server Manifest that describes it (trackName, custom attributes, …). */
  params: Array<[string, string]>;
  language: string | undefined;
}

const TYPES: Record<string, 'video' | 'audio'> = { vide: 'video', soun: 'audio' };
/** moov handlers of the tracks an `.ism`'s `<textstream>` may name (as the ingest takes them). */
const TEXT_HANDLERS: ReadonlySet<string> = new Set(['text', 'sbtl', 'subt', 'meta', 'data']);

/** The type of a moov track as an `.ism` element names it. */
function typeOfHandler(handler: string): TrackType | undefined {
  return TYPES[handler] ?? (TEXT_HANDLERS.has(handler) ? 'text' : undefined);
}

/** Average bitrate of a track from its sample bytes and its duration, rounded to kbit/s. */
function averageBitrate(scan: ScannedFile, trackId: number): number {
  const list = scan.fragments.get(trackId) ?? [];
  const timescale = scan.moov.tracks.find((t) => t.trackId === trackId)?.timescale ?? 0;
  const first = list[0];
  const last = list[list.length - 1];
  if (!first || !last || !timescale) return 0;
  const ticks = last.time + last.duration - first.time;
  const bits = BigInt(scan.bytes.get(trackId) ?? 0) * 8n * BigInt(timescale);
  const bps = Number(bits / (ticks > 0n ? ticks : 1n));
  return bps >= 1000 ? Math.round(bps / 1000) * 1000 : Math.max(1, bps);
}

/** Describes the chosen tracks of one file with the ingest's own header logic. */
function describe(scan: ScannedFile, picks: Pick[]): TrackDescription[] {
  const tracks: SmilTrack[] = picks.map((p) => ({
    type: p.type,
    trackId: p.trackId,
    bitrate: p.bitrate ?? averageBitrate(scan, p.trackId),
    language: p.language,
    params: p.params,
  }));
  try {
    return describeTracks(renderSmil(tracks), scan.moov);
  } catch (err) {
    if (isSmoothError(err)) throw inputError(scan.file, err.message);
    throw err;
  }
}

/**
 * The tracks of a plain file: every video and audio track (or those its own Live Server Manifest lists,
 * its sparse ones only when asked for).
 */
function plainPicks(scan: ScannedFile, sparse: boolean): TrackDescription[] {
  if (scan.lsm !== undefined) {
    let described: TrackDescription[];
    try {
      described = describeTracks(scan.lsm, scan.moov);
    } catch (err) {
      if (isSmoothError(err)) throw inputError(scan.file, `its Live Server Manifest box: ${err.message}`);
      throw err;
    }
    const kept = sparse ? described : described.filter((d) => d.info.parent === undefined);
    if (kept.length === 0) throw inputError(scan.file, 'no video or audio tracks (only sparse ones)');
    return kept;
  }
  const picks: Pick[] = [];
  const audioLanguages = new Set(scan.moov.tracks.filter((t) => t.handler === 'soun').map((t) => t.language));
  for (const t of scan.moov.tracks) {
    const type = TYPES[t.handler];
    if (!type) continue;
    const params: Array<[string, string]> = [];
    // Audio tracks in several languages are separate StreamIndexes, not quality levels of one.
    if (type === 'audio' && audioLanguages.size > 1 && /^[a-z]{3}$/.test(t.language) && t.language !== 'und') {
      params.push(['trackName', `audio_${t.language}`]);
    }
    const avg = t.entry?.avgBitrate;
    picks.push({ type, trackId: t.trackId, bitrate: avg && avg > 0 ? avg : averageBitrate(scan, t.trackId), params, language: undefined });
  }
  if (picks.length === 0) throw inputError(scan.file, 'no video or audio tracks');
  // Measured bitrates are estimates: two equal ones in a StreamIndex would be one QualityLevel.
  const seen = new Set<string>();
  for (const p of picks) {
    const name = p.params.find(([k]) => k === 'trackName')?.[1] ?? p.type;
    while (seen.has(`${name}/${p.bitrate}`)) p.bitrate! += 1000;
    seen.add(`${name}/${p.bitrate}`);
  }
  return describe(scan, picks);
}

/**
 * The elements of an `.ism` server manifest, resolved to files: its `<video>`s and `<audio>`s, and its
 * sparse `<textstream>`s when asked for (a text track without a parent has no reader here).
 */
async function readServerManifest(file: string, metas: Map<string, string>, sparse: boolean): Promise<Array<{ media: string; element: LsmElement }>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw inputError(file, `cannot read: ${(err as Error).message}`);
  }
  let elements: LsmElement[];
  try {
    elements = parseLiveServerManifest(text.replace(/^\uFEFF/, ''), metas);
  } catch (err) {
    throw inputError(file, `not a valid server manifest: ${(err as Error).message}`);
  }
  return elements.map((element) => {
    if (element.type === 'text' && !(sparse && element.params.has('parentTrackName'))) return undefined;
    if (!element.src) throw inputError(file, `a <${element.type}> element has no src`);
    return { media: path.resolve(path.dirname(file), element.src), element };
  }).filter((e): e is { media: string; element: LsmElement } => e !== undefined);
}

/** The input of a simulated encoder: tracks with their fragment index, and access to the bytes. */
export class Source {
  /** Every track, in input order (the `.ism`'s order, else each file's track order). */
  readonly tracks: readonly SourceTrack[];
  /** `<meta name content>` of the `.ism` server manifests read (the last one wins), e.g. `clientManifestRelativePath`. */
  readonly metas: ReadonlyMap<string, string>;
  readonly #files: FileHandles;
  /** The handles this source opened itself (closed with it); `undefined` when they were given. */
  readonly #owned: OpenFiles | undefined;
  /** For a source of growing files: where each file's scan stopped, to go on from there. */
  readonly #growth: { maxBoxSize: number; scans: ReadonlyMap<string, ScanState> } | undefined;

  /** Use {@link openSource}. */
  constructor(
    tracks: SourceTrack[],
    files?: FileHandles,
    metas: ReadonlyMap<string, string> = new Map(),
    growth?: { maxBoxSize: number; scans: ReadonlyMap<string, ScanState> },
  ) {
    this.tracks = tracks;
    this.metas = metas;
    this.#growth = growth;
    // Only openSource can hand over an OpenFiles (the class is private to this module): those are ours.
    this.#owned = files instanceof OpenFiles ? files : files ? undefined : new OpenFiles();
    this.#files = files ?? this.#owned!;
  }

  /**
   * Reads fragment `index` of `track`: fresh buffers, never shared with another read.
   * @throws EncoderError ERR_ENCODER_INPUT when the file changed since it was scanned
   */
  async read(track: SourceTrack, index: number): Promise<RawFragment> {
    const f = track.fragments[index];
    if (!f) throw new RangeError(`track has no fragment ${index}`);
    try {
      return await this.#files.use(track.file, async (handle) => {
        if (f.moofSize === 0) {
          // Indexed from the file's tfra: where the moof ends and its mdat lies is learnt now, once.
          const found = await readFragmentAt(handle, f.moofOffset, (await handle.stat()).size, Number.MAX_SAFE_INTEGER);
          if (!found) throw new Error('no moof and mdat where the tfra points');
          f.moofSize = found.moof.data.length;
          f.mdatOffset = found.mdatOffset;
          f.mdatSize = found.mdatSize;
          f.trafs = [...childrenOf(found.moof)].filter((c) => c.type === 'traf').length;
        }
        const [moof, mdat] = await Promise.all([readAt(handle, f.moofOffset, f.moofSize), readAt(handle, f.mdatOffset, f.mdatSize)]);
        const moofBox = soleBox(moof);
        const mdatBox = soleBox(mdat);
        if (moofBox.type !== 'moof' || mdatBox.type !== 'mdat') throw new Error('boxes moved');
        return { moof: moofBox, mdat: mdatBox, gap: f.mdatOffset - f.moofOffset - f.moofSize };
      });
    } catch (err) {
      throw inputError(track.file, `changed while in use (fragment at offset ${f.moofOffset}): ${(err as Error).message}`);
    }
  }

  /**
   * The sample bytes of fragment `index` of `track` (what a `manifestOutput` client manifest carries in
   * `<f>`), or `undefined` when there are more than `limit` of them.
   * @throws EncoderError ERR_ENCODER_INPUT when the file changed since it was scanned
   */
  async samples(track: SourceTrack, index: number, limit: number): Promise<Buffer | undefined> {
    const known = track.fragments[index];
    // A scanned fragment's size is known: a large one is not read at all.
    if (known && known.trafs === 1 && known.mdatSize > limit + 16) return undefined;
    const raw = await this.read(track, index);
    const where = `fragment at offset ${track.fragments[index]!.moofOffset}`;
    let all: ReturnType<typeof parseMovieFragment>;
    try {
      all = parseMovieFragment(raw.moof, raw.mdat, raw.moof.data.length + raw.gap, (id) => (id === track.fileTrackId ? track.defaults : undefined));
    } catch (err) {
      throw inputError(track.file, `${where}: ${(err as Error).message}`);
    }
    const own = all.find((f) => f.trackId === track.fileTrackId);
    if (!own) throw inputError(track.file, `${where} has no traf for track ${track.fileTrackId}`);
    return own.dataSize > limit ? undefined : Buffer.concat(own.data, own.dataSize);
  }

  /**
   * For a source opened with {@link SourceOptions.growing}: scans what its files gained since (a live
   * archive being written), from where the last scan stopped, and appends their complete fragments to
   * the tracks' `fragments`. Work is linear in the bytes added, not in the file.
   * @returns the number of fragments added
   * @throws EncoderError ERR_ENCODER_INPUT when what was added is not a continuation of the file
   */
  async grow(): Promise<number> {
    if (!this.#growth || !this.unfinished) return 0;
    let added = 0;
    for (const [file, state] of this.#growth.scans) {
      const before = new Map([...state.fragments].map(([id, list]) => [id, list.length]));
      await this.#files.use(file, async (fh) => {
        const size = (await fh.stat()).size;
        if (size > state.end) await scanBoxes(file, fh, size, state, this.#growth!.maxBoxSize, true);
      });
      for (const [id, list] of state.fragments) {
        const from = Math.max(1, before.get(id) ?? 0);
        for (let i = from; i < list.length; i++) {
          if (list[i]!.time <= list[i - 1]!.time) throw inputError(file, `track ${id}: fragment at offset ${list[i]!.moofOffset} does not start after the previous one`);
        }
        added += list.length - (before.get(id) ?? 0);
      }
    }
    return added;
  }

  /**
   * Opened {@link SourceOptions.growing} and none of its files ended with an `mfra` yet: they may still
   * be written to. A finished file that changes was rewritten, not extended.
   */
  get unfinished(): boolean {
    if (!this.#growth) return false;
    for (const state of this.#growth.scans.values()) if (state.finished) return false;
    return true;
  }

  /** Closes the files it opened (given {@link SourceOptions.files} stay open). */
  async close(): Promise<void> {
    await this.#owned?.close();
  }
}

/**
 * Opens the encoder's input: `.ismv`/`.isma` files (every video and audio track of each), or `.ism`
 * on-demand presentations (the tracks their `<switch>` lists, with their `systemBitrate`, `trackName`
 * and language). A file with a Live Server Manifest box (a live archive) is described by that box.
 * Sparse tracks (captions, ad markers) only with {@link SourceOptions.sparse}.
 *
 * @throws EncoderError ERR_ENCODER_INPUT naming the file and the problem: unreadable, not MP4, not
 *   fragmented, no video or audio tracks, truncated, a codec the manifest cannot describe, a media track
 *   without fragments or with a fragment of duration 0, two tracks that would be indistinguishable
 */
export async function openSource(files: readonly string[], options: SourceOptions = {}): Promise<Source> {
  if (files.length === 0) throw new EncoderError('ERR_ENCODER_INPUT', 'no input files');
  const maxBoxSize = options.maxBoxSize ?? 32 * 1024 * 1024;
  const handles = options.files ?? new OpenFiles();
  try {
    return await openTracks(files, maxBoxSize, handles, options.checkMedia, options.growing === true, options.randomAccess === true, options.sparse === true);
  } catch (err) {
    if (handles instanceof OpenFiles) await handles.close();
    throw err;
  }
}

async function openTracks(
  files: readonly string[],
  maxBoxSize: number,
  handles: FileHandles,
  checkMedia: SourceOptions['checkMedia'],
  growing: boolean,
  randomAccess: boolean,
  sparse: boolean,
): Promise<Source> {
  const metas = new Map<string, string>();
  const scans = new Map<string, Promise<ScannedFile>>();
  const scan = (file: string): Promise<ScannedFile> => {
    let s = scans.get(file);
    if (!s) scans.set(file, (s = scanFile(file, maxBoxSize, handles, growing, randomAccess)));
    return s;
  };
  const tracks: SourceTrack[] = [];
  /** Tracks whose bitrate a manifest names (not measured). */
  const named = new Set<SourceTrack>();
  const add = (s: ScannedFile, described: TrackDescription[], namedBitrate: boolean): void => {
    for (const d of described) {
      const fragments = s.fragments.get(d.trackId) ?? [];
      const isSparse = d.info.parent !== undefined;
      // A sparse track with no event in the presentation is still one (and lists nothing).
      if (fragments.length === 0 && !isSparse) throw inputError(s.file, `track ${d.trackId} has no fragments`);
      if (!isSparse && fragments.some((f) => f.duration <= 0n)) throw inputError(s.file, `track ${d.trackId}: a fragment's duration is 0`);
      const track: SourceTrack = {
        file: s.file,
        fileTrackId: d.trackId,
        info: d.info,
        trak: s.traks.get(d.trackId)!,
        trex: s.trexes.get(d.trackId),
        defaults: d.trex,
        mvhd: s.mvhd,
        fragments,
      };
      tracks.push(track);
      if (namedBitrate) named.add(track);
    }
  };
  for (const file of files) {
    if (!/\.ism$/i.test(file)) {
      const s = await scan(file);
      add(s, plainPicks(s, sparse), s.lsm !== undefined);
      continue;
    }
    // An .ism names media files; elements of one file are described together (shared moov).
    const byFile = new Map<string, Pick[]>();
    for (const { media, element } of await readServerManifest(file, metas, sparse)) {
      await checkMedia?.(media, file);
      const s = await scan(media);
      const params = [...element.params].filter(([k]) => k !== 'trackID' && k !== 'systemBitrate');
      const id = element.params.get('trackID');
      const candidates = s.moov.tracks.filter((t) => typeOfHandler(t.handler) === element.type);
      const trackId = id !== undefined ? Number(id) : candidates[0]?.trackId;
      if (trackId === undefined || !candidates.some((t) => t.trackId === trackId)) {
        throw inputError(file, `<${element.type} src="${element.src}">: ${media} has no ${element.type} track ${id ?? ''}`.trim());
      }
      const bitrate = element.systemBitrate !== undefined ? Number(element.systemBitrate) : undefined;
      let list = byFile.get(media);
      if (!list) byFile.set(media, (list = []));
      list.push({ type: element.type, trackId, bitrate, params, language: element.systemLanguage });
    }
    if (![...byFile.values()].some((picks) => picks.some((p) => p.type !== 'text'))) throw inputError(file, 'lists no video or audio tracks');
    for (const [media, picks] of byFile) {
      const s = await scan(media);
      add(s, describe(s, picks), true);
    }
  }
  uniqueKeys(tracks, named);
  if (!growing) return new Source(tracks, handles, metas);
  const states = new Map<string, ScanState>();
  for (const [file, s] of scans) states.set(file, (await s).state);
  return new Source(tracks, handles, metas, { maxBoxSize, scans: states });
}

/**
 * Two tracks with the same type, name and bitrate would be one QualityLevel. Bitrates measured from the
 * files are only estimates, so such a clash moves the later one up by 1 kbit/s; named bitrates must differ.
 */
function uniqueKeys(tracks: SourceTrack[], named: ReadonlySet<SourceTrack>): void {
  const keys = new Map<string, SourceTrack>();
  for (const t of tracks) {
    let key = trackKey(t.info);
    const other = keys.get(key);
    if (other) {
      if (named.has(t)) {
        throw inputError(t.file, `track ${t.fileTrackId} has the same type, name and bitrate as track ${other.fileTrackId} of ${other.file}`);
      }
      while (keys.has(key)) {
        t.info.bitrate += 1000;
        key = trackKey(t.info);
      }
    }
    keys.set(key, t);
  }
}
