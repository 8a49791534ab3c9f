/**
 * The header of an ingest stream: the Live Server Manifest box (SMIL) and the `moov`, combined into
 * one description per track (protocol doc §2.5, §2.6).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SmoothError } from '../errors';
import { smilParser } from '../smil';
import type { Moov, MoovTrack, Trex } from '../mp4/boxes';
import { KNOWN_FOURCC, codecPrivateDataFromEntry, fourCCFromEntry } from '../mp4/codec';
import { IDENTIFIER, TrackInfo, TrackType } from '../model';

/** One track of an ingest stream as its header describes it, plus what fragment parsing needs. */
export interface TrackDescription {
  /** `track_ID` inside this bitstream (ffmpeg's per-track POSTs all use 1). */
  trackId: number;
  info: TrackInfo;
  /** Defaults for trun fields absent from tfhd/trun. */
  trex: Trex | undefined;
}

/** A track of a stream header that is read past (its fragments are parsed and dropped), and why. */
export interface SkippedTrack {
  trackId: number;
  trex: Trex | undefined;
  reason: string;
}

/** One element of the Live Server Manifest `<switch>` (also of an on-demand `.ism`, which shares the grammar). */
export interface LsmElement {
  type: TrackType;
  /** `Streams` in a live manifest; the media file in an on-demand `.ism`. */
  src: string | undefined;
  systemBitrate: string | undefined;
  systemLanguage: string | undefined;
  params: Map<string, string>;
}

const xml = smilParser(['video', 'audio', 'textstream', 'param', 'meta', 'switch']);

type XmlNode = Record<string, unknown>;

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_HEADER', message);
}

/**
 * Bounds on a Live Server Manifest (and an on-demand `.ism`), checked in one linear pass before the
 * XML parser sees the text. Real ones are a few KB: a dozen elements per track, five attributes at most
 * per element, values no longer than a CodecPrivateData.
 */
export const LSM_LIMITS = {
  /** Characters of SMIL text (the box itself is capped at 1 MiB by the ingest parser). */
  maxChars: 1 << 20,
  /** Start tags (elements), comments and processing instructions not counted. */
  maxElements: 4096,
  /** Attributes on one element. */
  maxAttributesPerElement: 64,
  /** Attributes in the whole document. */
  maxAttributes: 16_384,
  /** Characters of an element or attribute name. */
  maxNameLength: 256,
  /** Characters of one attribute value. */
  maxValueLength: 65_536,
  /** Elements open at once. */
  maxDepth: 32,
} as const;

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** Bounds of an XML document checked by {@link checkXmlLimits}; {@link LSM_LIMITS} has their meaning. */
export type XmlLimits = { readonly [K in keyof typeof LSM_LIMITS]: number };

/**
 * Refuses XML text beyond `L` in time linear in its length and without allocating per element, before
 * an XML parser sees it. Malformed markup is left to the validator (the scan stops where it cannot follow).
 * @param what - names the document in the messages
 * @throws SmoothError ERR_BAD_HEADER naming the bound exceeded
 */
export function checkXmlLimits(text: string, what = 'Live Server Manifest', L: XmlLimits = LSM_LIMITS): void {
  if (text.length > L.maxChars) throw bad(`${what} of ${text.length} characters exceeds ${L.maxChars}`);
  // XML 1.0 allows no NUL anywhere (trailing ones were dropped with the box padding).
  if (text.indexOf('\0') >= 0) throw bad(`${what} contains a NUL character`);
  const n = text.length;
  let elements = 0;
  let attributes = 0;
  let depth = 0;
  let i = 0;
  const skipTo = (end: string, from: number): number => {
    const at = text.indexOf(end, from);
    return at < 0 ? n : at + end.length;
  };
  while (i < n) {
    const lt = text.indexOf('<', i);
    if (lt < 0) return;
    const next = text.charCodeAt(lt + 1);
    if (text.startsWith('!--', lt + 1)) i = skipTo('-->', lt + 4);
    else if (text.startsWith('![CDATA[', lt + 1)) i = skipTo(']]>', lt + 9);
    else if (next === 0x3f /* ? */) i = skipTo('?>', lt + 2);
    else if (next === 0x21 /* ! */) i = skipTo('>', lt + 2);
    else if (next === 0x2f /* / */) {
      depth--;
      i = skipTo('>', lt + 2);
    } else {
      if (++elements > L.maxElements) throw bad(`${what} has more than ${L.maxElements} elements`);
      let p = lt + 1;
      while (p < n && !isSpace(text.charCodeAt(p)) && text[p] !== '>' && text[p] !== '/') p++;
      if (p - lt - 1 > L.maxNameLength) throw bad(`${what} has an element name longer than ${L.maxNameLength}`);
      let own = 0;
      for (;;) {
        while (p < n && isSpace(text.charCodeAt(p))) p++;
        if (p >= n) return;
        const c = text[p];
        if (c === '>') {
          if (++depth > L.maxDepth) throw bad(`${what} nests elements deeper than ${L.maxDepth}`);
          p++;
          break;
        }
        if (c === '/') {
          p++;
          if (text[p] === '>') {
            p++;
            break;
          }
          continue;
        }
        const a = p;
        while (p < n && !isSpace(text.charCodeAt(p)) && text[p] !== '=' && text[p] !== '>' && text[p] !== '/') p++;
        if (p - a > L.maxNameLength) throw bad(`${what} has an attribute name longer than ${L.maxNameLength}`);
        if (++own > L.maxAttributesPerElement) {
          throw bad(`${what} has an element with more than ${L.maxAttributesPerElement} attributes`);
        }
        if (++attributes > L.maxAttributes) throw bad(`${what} has more than ${L.maxAttributes} attributes`);
        while (p < n && isSpace(text.charCodeAt(p))) p++;
        if (text[p] !== '=') continue;
        p++;
        while (p < n && isSpace(text.charCodeAt(p))) p++;
        const q = text[p];
        let end: number;
        if (q === '"' || q === "'") {
          end = text.indexOf(q, p + 1);
          if (end < 0) return;
          if (end - p - 1 > L.maxValueLength) throw bad(`${what} has an attribute value longer than ${L.maxValueLength}`);
          p = end + 1;
        } else {
          end = p;
          while (end < n && !isSpace(text.charCodeAt(end)) && text[end] !== '>') end++;
          if (end - p > L.maxValueLength) throw bad(`${what} has an attribute value longer than ${L.maxValueLength}`);
          p = end;
        }
      }
      i = p;
    }
  }
}

/**
 * Reads an XML document within bounds: {@link checkXmlLimits}, then well-formedness, then `parser`.
 * @param what - names the document in the messages
 * @throws SmoothError ERR_BAD_HEADER for text that is not well-formed or exceeds `limits`
 */
export function readXml(text: string, parser: XMLParser, what = 'Live Server Manifest', limits: XmlLimits = LSM_LIMITS): Record<string, unknown> {
  checkXmlLimits(text, what, limits);
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw bad(`${what} is not well-formed XML: ${valid.err.msg}`);
  try {
    return parser.parse(text) as Record<string, unknown>;
  } catch (err) {
    // The validator lets some documents through that the parser rejects (e.g. a trailing unclosed `<?pi`).
    throw bad(`${what} is not well-formed XML: ${(err as Error).message}`);
  }
}

/**
 * Parses the SMIL text of a Live Server Manifest box into its track elements.
 * @param metas - filled with the `<head><meta name content>` pairs, when given (an on-demand `.ism`
 *   names its client manifest there)
 * @throws SmoothError ERR_BAD_HEADER for text that is not well-formed or exceeds {@link LSM_LIMITS}
 */
export function parseLiveServerManifest(text: string, metas?: Map<string, string>): LsmElement[] {
  const doc = readXml(text, xml);
  const smil = doc.smil as XmlNode | undefined;
  if (metas) {
    const head = smil?.head as XmlNode | undefined;
    for (const m of (head?.meta as XmlNode[] | undefined) ?? []) {
      if (typeof m.name === 'string') metas.set(m.name, typeof m.content === 'string' ? m.content : '');
    }
  }
  const body = smil?.body as XmlNode | undefined;
  const sw = (body?.switch as XmlNode[] | undefined)?.[0];
  if (!sw) throw bad('Live Server Manifest has no <smil><body><switch>');
  const out: LsmElement[] = [];
  for (const [tag, type] of [
    ['video', 'video'],
    ['audio', 'audio'],
    ['textstream', 'text'],
  ] as const) {
    for (const el of (sw[tag] as XmlNode[] | undefined) ?? []) {
      const params = new Map<string, string>();
      for (const p of (el.param as XmlNode[] | undefined) ?? []) {
        if (typeof p.name === 'string') params.set(p.name, typeof p.value === 'string' ? p.value : '');
      }
      out.push({
        type,
        src: typeof el.src === 'string' ? el.src : undefined,
        systemBitrate: typeof el.systemBitrate === 'string' ? el.systemBitrate : undefined,
        systemLanguage: typeof el.systemLanguage === 'string' ? el.systemLanguage : undefined,
        params,
      });
    }
  }
  if (out.length === 0) throw bad('Live Server Manifest lists no tracks');
  return out;
}

function uint(value: string | undefined, what: string, max = 0xffffffff): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,10}$/.test(value) || Number(value) > max) throw bad(`${what} "${value.slice(0, 32)}" is not a valid number`);
  return Number(value);
}

const DEFAULT_NAMES: Record<TrackType, string> = { video: 'video', audio: 'audio', text: 'textstream' };
const HANDLERS: Record<TrackType, readonly string[]> = {
  video: ['vide'],
  audio: ['soun'],
  text: ['text', 'sbtl', 'subt', 'meta', 'data'],
};
const KNOWN_PARAMS = new Set([
  'trackID', 'trackName', 'timescale', 'FourCC', 'CodecPrivateData', 'MaxWidth', 'MaxHeight', 'DisplayWidth',
  'DisplayHeight', 'AudioTag', 'Channels', 'SamplingRate', 'BitsPerSample', 'PacketSize', 'Subtype',
  'systemBitrate', 'systemLanguage', 'NALUnitLengthField', 'manifestOutput', 'parentTrackName', 'Scheme',
]);

/**
 * Combines the Live Server Manifest and the `moov` into per-track descriptions. Values from the
 * manifest win; the `moov` fills in what it lacks (FourCC, CodecPrivateData, sizes, audio format).
 * @param skipped - when given, text tracks of a format players cannot be told about are left out and
 *   listed here, not refused
 * @throws SmoothError ERR_BAD_HEADER for a malformed or inconsistent header, ERR_UNKNOWN_CODEC for a codec
 *   that cannot be described to players
 */
export function describeTracks(lsmText: string, moov: Moov, skipped?: SkippedTrack[]): TrackDescription[] {
  const elements = parseLiveServerManifest(lsmText);
  const byId = new Map<number, MoovTrack>(moov.tracks.map((t) => [t.trackId, t]));
  const seen = new Set<number>();
  const keys = new Set<string>();
  return elements.flatMap((el): TrackDescription[] => {
    const p = (name: string): string | undefined => el.params.get(name);
    const trackId = uint(p('trackID'), 'trackID');
    if (trackId === undefined) throw bad(`a <${el.type}> element has no trackID param`);
    if (seen.has(trackId)) throw bad(`trackID ${trackId} is listed twice`);
    seen.add(trackId);
    const mt = byId.get(trackId);
    if (!mt) throw bad(`trackID ${trackId} of the Live Server Manifest has no trak in moov`);
    if (!HANDLERS[el.type].includes(mt.handler)) {
      throw bad(`trackID ${trackId} is <${el.type}> in the manifest but '${mt.handler}' in moov`);
    }
    const name = p('trackName') ?? DEFAULT_NAMES[el.type];
    if (!IDENTIFIER.test(name)) throw bad(`trackName "${name.slice(0, 64)}" is not a valid identifier`);
    const parent = p('parentTrackName');
    if (parent !== undefined) {
      if (el.type !== 'text') throw bad(`track ${trackId}: only a <textstream> can be sparse (parentTrackName)`);
      if (!IDENTIFIER.test(parent)) throw bad(`track ${trackId}: parentTrackName "${parent.slice(0, 64)}" is not a valid identifier`);
      if (parent === name) throw bad(`track ${trackId} names itself as its parentTrackName`);
    }
    const scheme = p('Scheme');
    if (scheme !== undefined && !/^[A-Za-z][A-Za-z0-9+.:/_-]{0,127}$/.test(scheme)) {
      throw bad(`track ${trackId}: Scheme "${scheme.slice(0, 64)}" is not a URI`);
    }
    // Azure's sparse tracks may leave out the bitrate (SCTE-35 tracks declare 0).
    const bitrate = uint(el.systemBitrate ?? p('systemBitrate'), 'systemBitrate') ?? (parent !== undefined ? 0 : undefined);
    if (bitrate === undefined) throw bad(`track ${trackId} has no systemBitrate`);
    const customAttributes: [string, string][] = [];
    for (const [k, v] of el.params) {
      if (KNOWN_PARAMS.has(k) || !k.includes('_')) continue;
      // `{namespace}_{attr}` params become CustomAttributes named after the part after the first `_`.
      const attr = k.slice(k.indexOf('_') + 1);
      if (!IDENTIFIER.test(attr) || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) {
        throw bad(`custom attribute ${k.slice(0, 64)} is not a valid identifier pair`);
      }
      customAttributes.push([attr, v]);
    }
    const entry = mt.entry;
    const fourCC = (p('FourCC') || (entry && fourCCFromEntry(entry)) || (scheme !== undefined ? 'DATA' : '')).toUpperCase();
    const unknown = !fourCC
      ? `track ${trackId}: no FourCC and unknown sample entry '${entry?.format ?? 'none'}'`
      : !KNOWN_FOURCC[el.type].includes(fourCC)
        ? `track ${trackId}: unknown ${el.type} FourCC '${fourCC.slice(0, 8)}'`
        : undefined;
    if (unknown !== undefined) {
      // A text track nobody can play should not take the audio and video of its stream down with it.
      if (el.type !== 'text' || !skipped) throw new SmoothError('ERR_UNKNOWN_CODEC', unknown);
      skipped.push({ trackId, trex: mt.trex, reason: unknown });
      return [];
    }
    const cpd = (p('CodecPrivateData') || (entry && codecPrivateDataFromEntry(entry)) || '').toUpperCase();
    if (cpd && !/^([0-9A-F]{2})*$/.test(cpd)) throw bad(`track ${trackId}: CodecPrivateData is not hex`);
    if (!cpd && ['H264', 'AVC1'].includes(fourCC)) {
      throw new SmoothError('ERR_UNKNOWN_CODEC', `track ${trackId}: H.264 without CodecPrivateData or avcC`);
    }
    const timescale = uint(p('timescale'), 'timescale') ?? mt.timescale;
    if (!timescale) throw bad(`track ${trackId} has timescale 0`);
    const lang = el.systemLanguage ?? p('systemLanguage') ?? mt.language;
    const info: TrackInfo = {
      type: el.type,
      name,
      bitrate,
      customAttributes,
      fourCC,
      codecPrivateData: cpd,
      timescale,
      subtype: p('Subtype') ?? '',
      language: lang && lang !== 'und' && /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(lang) ? lang : undefined,
    };
    if (parent !== undefined) {
      info.parent = parent;
      info.manifestOutput = /^true$/i.test(p('manifestOutput') ?? '');
    }
    if (scheme !== undefined) info.scheme = scheme;
    if (el.type === 'video') {
      info.maxWidth = uint(p('MaxWidth'), 'MaxWidth') ?? entry?.width;
      info.maxHeight = uint(p('MaxHeight'), 'MaxHeight') ?? entry?.height;
      info.displayWidth = uint(p('DisplayWidth'), 'DisplayWidth') ?? info.maxWidth;
      info.displayHeight = uint(p('DisplayHeight'), 'DisplayHeight') ?? info.maxHeight;
      if (['H264', 'AVC1'].includes(fourCC)) {
        info.nalUnitLengthField = uint(p('NALUnitLengthField'), 'NALUnitLengthField') ?? entry?.avc?.nalLengthSize ?? 4;
      }
    } else if (el.type === 'audio') {
      info.audioTag = uint(p('AudioTag'), 'AudioTag') ?? (fourCC.startsWith('AAC') ? 255 : undefined);
      info.channels = uint(p('Channels'), 'Channels') ?? entry?.channels;
      info.samplingRate = uint(p('SamplingRate'), 'SamplingRate') ?? entry?.sampleRate;
      info.bitsPerSample = uint(p('BitsPerSample'), 'BitsPerSample') ?? entry?.sampleSize ?? 16;
      info.packetSize = uint(p('PacketSize'), 'PacketSize') ?? 4;
    }
    const key = `${info.type}/${info.name}/${info.bitrate}/${customAttributes.join()}`;
    if (keys.has(key)) {
      throw bad(`two tracks share ${info.type} name "${info.name}" and bitrate ${info.bitrate}; give them distinct trackNames`);
    }
    keys.add(key);
    return [{ trackId, info, trex: mt.trex }];
  });
}
