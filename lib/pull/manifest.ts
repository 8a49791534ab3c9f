/**
 * Reading an upstream's Smooth client manifest (MS-SSTR 2.2.2): the tracks a pulled point ingests and
 * the fragments the upstream lists. Every value is validated as ingest would validate it, since it will
 * reach this origin's manifests, URLs and store keys; times stay exact `bigint`s.
 */
import { XMLParser } from 'fast-xml-parser';
import { SmoothError } from '../errors';
import { IDENTIFIER } from '../model';
import type { FragmentTime, TrackInfo, TrackType } from '../model';

/** One StreamIndex of an upstream manifest. */
export interface UpstreamStream {
  type: TrackType;
  name: string;
  timescale: number;
  /** The `Url` template, e.g. `QualityLevels({bitrate})/Fragments(video={start time})`. */
  url: string;
  /** Its quality levels, described as ingest would describe them. */
  tracks: TrackInfo[];
  /** The fragments listed, in time order (every quality level has them all). */
  fragments: FragmentTime[];
}

/** An upstream client manifest. */
export interface UpstreamManifest {
  isLive: boolean;
  lookahead: number;
  streams: UpstreamStream[];
}

/** Bounds on what an upstream manifest may hold. */
export const UPSTREAM_LIMITS = {
  streams: 32,
  levelsPerStream: 32,
  /** Fragments listed per StreamIndex (after expanding `r`). */
  fragments: 100_000,
};

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => ['StreamIndex', 'QualityLevel', 'c', 'Attribute'].includes(name),
});

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_UPSTREAM', `upstream manifest: ${message}`);
}

type Attrs = Record<string, unknown>;

function text(o: Attrs, name: string): string | undefined {
  const v = o[name];
  return typeof v === 'string' ? v : undefined;
}

function uint(o: Attrs, name: string, max = 0xffffffff): number | undefined {
  const v = text(o, name);
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) > max) throw bad(`${name}="${v.slice(0, 32)}" is not a valid number`);
  return Number(v);
}

function ticks(o: Attrs, name: string): bigint | undefined {
  const v = text(o, name);
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,20}$/.test(v)) throw bad(`${name}="${v.slice(0, 32)}" is not a valid time`);
  return BigInt(v);
}

const TYPES: readonly string[] = ['video', 'audio', 'text'];

/**
 * Parses a client manifest. Text streams are kept (their quality levels are described) so the caller
 * can say why they are not pulled.
 * @throws SmoothError ERR_BAD_UPSTREAM for anything that is not a valid live or finished manifest
 */
export function parseUpstreamManifest(xml: string): UpstreamManifest {
  let doc: Attrs;
  try {
    doc = parser.parse(xml) as Attrs;
  } catch (err) {
    throw bad(`not XML (${(err as Error).message.split('\n')[0]!.slice(0, 100)})`);
  }
  const root = doc.SmoothStreamingMedia as Attrs | undefined;
  if (!root || typeof root !== 'object') throw bad('no SmoothStreamingMedia element');
  const rootScale = uint(root, 'TimeScale') ?? 10_000_000;
  const list = (root.StreamIndex as Attrs[] | undefined) ?? [];
  if (list.length > UPSTREAM_LIMITS.streams) throw bad(`more than ${UPSTREAM_LIMITS.streams} StreamIndex elements`);
  const names = new Set<string>();
  const streams = list.map((si): UpstreamStream => {
    const type = text(si, 'Type') ?? '';
    if (!TYPES.includes(type)) throw bad(`StreamIndex Type "${type.slice(0, 16)}" is not video, audio or text`);
    const name = text(si, 'Name') ?? type;
    if (!IDENTIFIER.test(name)) throw bad(`StreamIndex Name "${name.slice(0, 64)}" is not a valid identifier`);
    if (names.has(name)) throw bad(`two StreamIndex elements are named "${name}"`);
    names.add(name);
    const timescale = uint(si, 'TimeScale') ?? rootScale;
    if (!timescale) throw bad(`${name}: TimeScale 0`);
    const url = text(si, 'Url') ?? '';
    if (!/\{bitrate\}/i.test(url) || !/\{start[ _]time\}/i.test(url) || url.length > 256) throw bad(`${name}: Url "${url.slice(0, 64)}" is not a fragment template`);
    const language = text(si, 'Language');
    const levels = (si.QualityLevel as Attrs[] | undefined) ?? [];
    if (levels.length === 0 || levels.length > UPSTREAM_LIMITS.levelsPerStream) throw bad(`${name}: ${levels.length} QualityLevels`);
    const tracks = levels.map((q) => level(q, si, type as TrackType, name, timescale, language));
    // A sparse StreamIndex (captions, ad markers) lists events: gaps, and a duration of 0 for one of
    // unknown length. The puller does not take it (it says so), but the rest of the manifest stands.
    return { type: type as TrackType, name, timescale, url, tracks, fragments: chunks(si, name, text(si, 'ParentStreamIndex') !== undefined) };
  });
  const isLive = /^true$/i.test(text(root, 'IsLive') ?? '');
  return { isLive, lookahead: uint(root, 'LookAheadFragmentCount') ?? 0, streams };
}

function level(q: Attrs, si: Attrs, type: TrackType, name: string, timescale: number, language: string | undefined): TrackInfo {
  const bitrate = uint(q, 'Bitrate');
  // Azure's sparse tracks (ad markers) declare a bitrate of 0.
  if (bitrate === undefined || (bitrate === 0 && type !== 'text')) throw bad(`${name}: a QualityLevel has no Bitrate`);
  const fourCC = (text(q, 'FourCC') ?? '').toUpperCase();
  if (!/^[A-Z0-9-]{3,4}$/.test(fourCC)) throw bad(`${name} ${bitrate}: FourCC "${fourCC.slice(0, 8)}" is not valid`);
  const cpd = (text(q, 'CodecPrivateData') ?? '').toUpperCase();
  if (!/^([0-9A-F]{2}){0,4096}$/.test(cpd)) throw bad(`${name} ${bitrate}: CodecPrivateData is not hex`);
  const customAttributes: Array<[string, string]> = [];
  const attrs = ((q.CustomAttributes as Attrs | undefined)?.Attribute as Attrs[] | undefined) ?? [];
  for (const a of attrs) {
    const n = text(a, 'Name') ?? '';
    const v = text(a, 'Value') ?? '';
    if (!IDENTIFIER.test(n) || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) throw bad(`${name} ${bitrate}: custom attribute "${n.slice(0, 32)}" is not a valid identifier pair`);
    customAttributes.push([n, v]);
  }
  const info: TrackInfo = {
    type,
    name,
    bitrate,
    customAttributes,
    fourCC,
    codecPrivateData: cpd,
    timescale,
    subtype: text(si, 'Subtype') ?? '',
    language: language && /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(language) ? language : undefined,
  };
  if (type === 'video') {
    info.maxWidth = uint(q, 'MaxWidth') ?? uint(si, 'MaxWidth');
    info.maxHeight = uint(q, 'MaxHeight') ?? uint(si, 'MaxHeight');
    info.displayWidth = uint(si, 'DisplayWidth') ?? info.maxWidth;
    info.displayHeight = uint(si, 'DisplayHeight') ?? info.maxHeight;
    info.nalUnitLengthField = uint(q, 'NALUnitLengthField') ?? 4;
  } else if (type === 'audio') {
    info.audioTag = uint(q, 'AudioTag');
    info.channels = uint(q, 'Channels', 0xffff);
    info.samplingRate = uint(q, 'SamplingRate');
    info.bitsPerSample = uint(q, 'BitsPerSample', 0xffff);
    info.packetSize = uint(q, 'PacketSize', 0xffff);
  }
  return info;
}

/**
 * The `c` elements as fragments: a missing `t` continues the previous one, `r` repeats (count included);
 * starts must increase. A duration of 0 is an error but in a sparse StreamIndex.
 */
function chunks(si: Attrs, name: string, sparse: boolean): FragmentTime[] {
  const out: FragmentTime[] = [];
  let next = 0n;
  for (const c of (si.c as Attrs[] | undefined) ?? []) {
    const t = ticks(c, 't') ?? next;
    const d = ticks(c, 'd');
    const r = uint(c, 'r') ?? 1;
    if (d === undefined || (d === 0n && !sparse)) throw bad(`${name}: a c element has no duration`);
    // A fragment may start a little before the previous one ends (AAC priming after an encoder
    // restart), never at or before the previous start.
    const previous = out[out.length - 1];
    if (previous && t <= previous.time) throw bad(`${name}: fragment times go back at ${t}`);
    if (r < 1) throw bad(`${name}: a c element has r="${r}" (a count of fragments, at least 1)`);
    if (out.length + r > UPSTREAM_LIMITS.fragments) throw bad(`${name}: more than ${UPSTREAM_LIMITS.fragments} fragments listed`);
    for (let i = 0; i < r; i++) out.push({ time: t + BigInt(i) * d, duration: d });
    next = t + BigInt(r) * d;
  }
  return out;
}

/** The URL of a fragment, relative to the upstream point's URL: the `Url` template filled in. */
export function fragmentPath(stream: UpstreamStream, track: TrackInfo, time: bigint): string {
  const custom = track.customAttributes.map(([k, v]) => `${k}=${v}`).join(',');
  return stream.url
    .replace(/\{bitrate\}/i, String(track.bitrate))
    .replace(/\{CustomAttributes\}/i, custom)
    .replace(/\{start[ _]time\}/i, time.toString());
}
