/**
 * The simulated encoder's sparse tracks (protocol doc §2.13): a TTML caption track and an SCTE-35 ad
 * marker track, declared as `<textstream>`s with a `parentTrackName` and pushed in a bitstream of their
 * own, as Azure asks of sparse tracks. Both follow the parent (the source's first video track) on its
 * timeline and timescale:
 *
 * - **Captions**: one fragment per parent fragment, same start and duration, so the caption timeline
 *   has no gap. Its one sample is a TTML document (IMSC1 text profile) with one `<p>` that covers the
 *   fragment, its times relative to the fragment start as Smooth clients expect (dash.js adds the sample
 *   time for Smooth), reading `live-smooth hh:mm:ss`: the fragment start on the track clock.
 * - **Ad markers**: at the first parent fragment start at least `every` seconds after the stream start,
 *   then after the previous marker, one fragment at that time lasting the break; its sample is Azure's
 *   `version 1, id, presentation_time_delta 0` header and a `splice_insert` (out of network, break
 *   duration, auto return). Measuring from the previous marker keeps breaks from overlapping whatever
 *   the fragment lengths.
 *
 * Track boxes: captions are `hdlr subt` + `sthd` with an `stpp` sample entry (ISO/IEC 14496-30: TTML
 * namespace, no schema location, no auxiliary MIME types); ad markers are `hdlr meta` + `nmhd` with a
 * `scte` MetaDataSampleEntry, as Azure's timed-metadata spec §2.2.2 names it.
 */
import { SmoothError } from '../errors';
import { escapeAttr } from '../manifest/xml';
import { IDENTIFIER, SCTE35_SCHEME, TrackInfo } from '../model';
import { makeBox, makeFullBox } from '../mp4/writer';
import type { MadeUpTrack } from '../ismv/header';
import { SCTE35_TIMESCALE, scte35Sample, spliceInsertSection } from './scte35';

/** The caption track: on with `true` or an object. */
export interface CaptionOptions {
  /** BCP 47 language of the captions (`systemLanguage`, `xml:lang`). Default `en`. */
  language?: string;
  /** Its `trackName` (the StreamIndex name). Default `captions`. */
  trackName?: string;
}

/** The SCTE-35 ad marker track. */
export interface AdMarkerOptions {
  /** Seconds of media between markers (> 0): the first comes this long after the stream start. */
  every: number;
  /** Length of each ad break, seconds (> 0, at most `every`, so breaks never overlap). */
  duration: number;
  /** Its `trackName`. Default `ads`. */
  trackName?: string;
}

/** The parent track, as the sparse tracks follow it. */
export interface SparseParent {
  /** Its StreamIndex name (`parentTrackName`). */
  name: string;
  timescale: number;
  /** Average fragment duration, ticks (to estimate the caption bitrate). */
  averageFragment: bigint;
}

/** One sparse fragment to send: which track (0-based in the sparse stream), its sample and times. */
export interface SparseSample {
  local: number;
  sample: Buffer;
  time: bigint;
  duration: bigint;
}

/** Default `trackName`s. */
export const CAPTIONS_NAME = 'captions';
export const ADS_NAME = 'ads';

/** Namespace of the `stpp` sample entry: TTML documents. */
const TTML_NAMESPACE = 'http://www.w3.org/ns/ttml';
/** IMSC1 text profile designator (W3C TTML Profiles for Internet Media Subtitles and Captions 1.0). */
const IMSC1_TEXT = 'http://www.w3.org/ns/ttml/profile/imsc1/text';
const LANGUAGE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

function invalid(name: string, problem: string): SmoothError {
  return new SmoothError('ERR_INVALID_OPTION', `option ${name} ${problem}`);
}

const pad = (n: number | bigint, width = 2): string => String(n).padStart(width, '0');

/** `hh:mm:ss` of a track time, wrapped at 24 h: the time of day with `start: 'now'`, else the time since the start. */
export function clockText(time: bigint, timescale: number): string {
  const day = 86_400n;
  const s = (((time / BigInt(timescale)) % day) + day) % day;
  return `${pad(s / 3600n)}:${pad((s / 60n) % 60n)}:${pad(s % 60n)}`;
}

/** A TTML clock time `hh:mm:ss.mmm` of `ticks`, rounded down to the millisecond so a cue never outlasts its fragment. */
function ttmlTime(ticks: bigint, timescale: number): string {
  const ms = (ticks * 1000n) / BigInt(timescale);
  return `${pad(ms / 3_600_000n)}:${pad((ms / 60_000n) % 60n)}:${pad((ms / 1000n) % 60n)}.${pad(ms % 1000n, 3)}`;
}

/**
 * The caption document of one fragment: a TTML (IMSC1 text profile) document whose one `<p>` starts
 * with the fragment and lasts `duration` ticks, times relative to the fragment start.
 */
export function captionDocument(text: string, duration: bigint, timescale: number, language: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<tt xmlns="${TTML_NAMESPACE}" xmlns:ttp="${TTML_NAMESPACE}#parameter" xmlns:tts="${TTML_NAMESPACE}#styling"` +
    ` ttp:profile="${IMSC1_TEXT}" ttp:timeBase="media" xml:lang="${escapeAttr(language)}">` +
    '<head><styling><style xml:id="s1" tts:color="white" tts:backgroundColor="black" tts:textAlign="center"/></styling>' +
    '<layout><region xml:id="r1" tts:origin="10% 80%" tts:extent="80% 15%" tts:displayAlign="after"/></layout></head>' +
    `<body><div><p region="r1" style="s1" begin="${ttmlTime(0n, timescale)}" end="${ttmlTime(duration, timescale)}">` +
    `${escapeAttr(text)}</p></div></body></tt>\n`
  );
}

const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
const u32 = (...values: number[]): Buffer => {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
};
const UNITY_MATRIX = u32(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000);
/** SampleEntry fields (ISO 14496-12 §8.5.2.2): six reserved bytes, data_reference_index 1. */
const SAMPLE_ENTRY_FIELDS = Buffer.concat([Buffer.alloc(6), u16(1)]);

/** mdhd's packed ISO 639-2/T code: a three-letter primary subtag, else `und` (the `elng` box then says it). */
function packedLanguage(language: string | undefined): number {
  const primary = language?.split('-')[0]?.toLowerCase();
  const code = primary && /^[a-z]{3}$/.test(primary) ? primary : 'und';
  return ((code.charCodeAt(0) - 0x60) << 10) | ((code.charCodeAt(1) - 0x60) << 5) | (code.charCodeAt(2) - 0x60);
}

/** A sparse `trak` (empty sample tables, duration 0 as Azure asks) and its `trex`. */
function sparseTrak(
  trackId: number,
  timescale: number,
  handler: 'subt' | 'meta',
  entry: Buffer,
  language: string | undefined,
  label: string,
): { trak: Buffer; trex: Buffer } {
  const tkhd = makeFullBox('tkhd', 0, 3, u32(0, 0, trackId, 0, 0), Buffer.alloc(8), u16(0), u16(0), u16(0), u16(0), UNITY_MATRIX, u32(0, 0));
  const mdhd = makeFullBox('mdhd', 0, 0, u32(0, 0, timescale, 0), u16(packedLanguage(language)), u16(0));
  const hdlr = makeFullBox('hdlr', 0, 0, u32(0), Buffer.from(handler, 'latin1'), Buffer.alloc(12), Buffer.from(`${label}\0`, 'utf8'));
  // elng (ISO 14496-12 §8.4.6) carries the full BCP 47 tag that mdhd's three letters cannot.
  const elng = language ? [makeFullBox('elng', 0, 0, Buffer.from(`${language}\0`, 'latin1'))] : [];
  const mediaHeader = handler === 'subt' ? makeFullBox('sthd', 0, 0) : makeFullBox('nmhd', 0, 0);
  const dinf = makeBox('dinf', makeFullBox('dref', 0, 0, u32(1), makeFullBox('url ', 0, 1)));
  const stbl = makeBox(
    'stbl',
    makeFullBox('stsd', 0, 0, u32(1), entry),
    makeFullBox('stts', 0, 0, u32(0)),
    makeFullBox('stsc', 0, 0, u32(0)),
    makeFullBox('stsz', 0, 0, u32(0, 0)),
    makeFullBox('stco', 0, 0, u32(0)),
  );
  const trak = makeBox('trak', tkhd, makeBox('mdia', mdhd, hdlr, ...elng, makeBox('minf', mediaHeader, dinf, stbl)));
  return { trak, trex: makeFullBox('trex', 0, 0, u32(trackId, 1, 0, 0, 0)) };
}

/** `stpp` (XMLSubtitleSampleEntry, ISO/IEC 14496-30 §6.4): namespace, then empty schema_location and auxiliary_mime_types. */
function stppEntry(): Buffer {
  return makeBox('stpp', SAMPLE_ENTRY_FIELDS, Buffer.from(`${TTML_NAMESPACE}\0\0\0`, 'utf8'));
}

/** `scte`: a MetaDataSampleEntry with no fields of its own (Azure timed-metadata spec §2.2.2). */
function scteEntry(): Buffer {
  return makeBox('scte', SAMPLE_ENTRY_FIELDS);
}

/**
 * The sparse tracks of one encoder: their descriptions and boxes, and the fragments each parent
 * fragment brings. Keeps the ad marker schedule, so parent fragments must be passed in time order.
 */
export class SparseTracks {
  /** The tracks, in stream order (captions first). */
  readonly tracks: MadeUpTrack[] = [];
  readonly #parent: SparseParent;
  readonly #captions: { local: number; language: string } | undefined;
  readonly #ads: { local: number; every: bigint; duration: bigint; duration90k: bigint } | undefined;
  /** Parent time of the next marker; set by the first fragment. */
  #nextMarker: bigint | undefined;
  #markerId = 0;

  /**
   * @param taken - names of the source's tracks, which a sparse track must not reuse
   * @throws SmoothError ERR_INVALID_OPTION for a bad option
   */
  constructor(
    options: { captions?: boolean | CaptionOptions; adMarkers?: AdMarkerOptions },
    parent: SparseParent,
    taken: readonly string[],
  ) {
    this.#parent = parent;
    const names = new Set(taken);
    const name = (option: string, value: string | undefined, fallback: string): string => {
      const n = value ?? fallback;
      if (typeof n !== 'string' || !IDENTIFIER.test(n)) throw invalid(option, 'must be a letter then up to 63 letters, digits, _ or -');
      if (names.has(n)) throw invalid(option, `"${n}" is already the name of another track`);
      names.add(n);
      return n;
    };
    const ts = parent.timescale;
    const c = options.captions;
    if (c !== undefined && c !== false) {
      if (c !== true && (typeof c !== 'object' || c === null)) throw invalid('captions', 'must be true, false or { language, trackName }');
      const o: CaptionOptions = c === true ? {} : c;
      const language = o.language ?? 'en';
      if (typeof language !== 'string' || !LANGUAGE.test(language) || language === 'und') {
        throw invalid('captions.language', 'must be a BCP 47 language tag such as en or pt-BR');
      }
      const trackName = name('captions.trackName', o.trackName, CAPTIONS_NAME);
      const local = this.tracks.length;
      // Nominal bitrate: one document per average fragment (the text has a fixed length).
      const bytes = Buffer.byteLength(captionDocument(`live-smooth ${clockText(0n, ts)}`, parent.averageFragment, ts, language));
      const seconds = Number(parent.averageFragment) / ts;
      const bitrate = Math.ceil((bytes * 8) / Math.max(seconds, 0.001) / 1000) * 1000;
      const info: TrackInfo = {
        type: 'text',
        name: trackName,
        bitrate,
        customAttributes: [],
        fourCC: 'TTML',
        codecPrivateData: '',
        timescale: ts,
        subtype: 'CAPT',
        language,
        parent: parent.name,
        manifestOutput: false,
      };
      this.tracks.push({ info, ...sparseTrak(local + 1, ts, 'subt', stppEntry(), language, 'live-smooth captions') });
      this.#captions = { local, language };
    }
    const a = options.adMarkers;
    if (a !== undefined) {
      if (typeof a !== 'object' || a === null) throw invalid('adMarkers', 'must be { every, duration } in seconds');
      if (typeof a.every !== 'number' || !(a.every > 0) || !Number.isFinite(a.every)) {
        throw invalid('adMarkers.every', 'must be a number of seconds > 0');
      }
      if (typeof a.duration !== 'number' || !(a.duration > 0) || a.duration > a.every) {
        throw invalid('adMarkers.duration', 'must be a number of seconds > 0 and at most adMarkers.every (breaks must not overlap)');
      }
      const duration = BigInt(Math.round(a.duration * ts));
      // The break is one sample: its duration is a 32-bit trun field.
      if (duration > 0xffffffffn) throw invalid('adMarkers.duration', `must be at most ${Math.floor(0xffffffff / ts)} s at timescale ${ts}`);
      const trackName = name('adMarkers.trackName', a.trackName, ADS_NAME);
      const local = this.tracks.length;
      const info: TrackInfo = {
        type: 'text',
        name: trackName,
        bitrate: 0, // Azure: "0", a track of unknown, variable bitrate
        customAttributes: [],
        fourCC: 'DATA',
        codecPrivateData: '',
        timescale: ts,
        subtype: 'DATA',
        language: undefined,
        parent: parent.name,
        manifestOutput: true,
        scheme: SCTE35_SCHEME,
      };
      this.tracks.push({ info, ...sparseTrak(local + 1, ts, 'meta', scteEntry(), undefined, 'live-smooth SCTE-35 ad markers') });
      this.#ads = {
        local,
        every: BigInt(Math.max(1, Math.round(a.every * ts))),
        duration,
        duration90k: BigInt(Math.round(a.duration * Number(SCTE35_TIMESCALE))),
      };
    }
  }

  /** Whether the stream carries captions (it then has a fragment for every parent fragment). */
  get captions(): boolean {
    return this.#captions !== undefined;
  }

  /**
   * The sparse fragments that go with one parent fragment (its caption, and an ad marker when one is
   * due at its start), in that order.
   * @param time - the parent fragment's start, parent timescale
   * @param start - the stream's start on the parent timeline (markers count from it)
   */
  samplesFor(time: bigint, duration: bigint, start: bigint): SparseSample[] {
    const out: SparseSample[] = [];
    const ts = this.#parent.timescale;
    if (this.#captions) {
      const text = `live-smooth ${clockText(time, ts)}`;
      const doc = captionDocument(text, duration, ts, this.#captions.language);
      out.push({ local: this.#captions.local, sample: Buffer.from(doc, 'utf8'), time, duration });
    }
    const ads = this.#ads;
    if (ads) {
      this.#nextMarker ??= start + ads.every;
      if (time >= this.#nextMarker) {
        const id = ++this.#markerId;
        const pts = (time * SCTE35_TIMESCALE) / BigInt(ts);
        const section = spliceInsertSection({ eventId: id, pts, duration: ads.duration90k, autoReturn: true, outOfNetwork: true });
        out.push({ local: ads.local, sample: scte35Sample(id, 0, section), time, duration: ads.duration });
        this.#nextMarker = time + ads.every;
      }
    }
    return out;
  }
}
