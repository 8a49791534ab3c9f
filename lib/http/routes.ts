/**
 * URL grammar of a live publishing point (MS-SSTR 2.2, protocol doc §1) and of an on-demand
 * presentation (`<name>.ism/Manifest`, `…/QualityLevels(…)/Fragments(…)`, protocol doc §6.2).
 * Percent-encoding is decoded exactly once, per path segment; nouns match case-insensitively, as IIS does.
 */
import { SmoothError } from '../errors';
import { IDENTIFIER } from '../model';

/** What a request URL addresses below a publishing point. */
export type Resource =
  | { kind: 'manifest' }
  /** The DASH MPD (`.mpd`, `Manifest(format=mpd-time-csf|mpd-time-cmaf)`) or the HLS master playlist (`.m3u8`, `Manifest(format=m3u8-aapl|m3u8-cmaf)`). */
  | { kind: 'output'; format: 'mpd' | 'm3u8' }
  /** Below `cmaf/<rep>/`: the init segment, a media segment at output time `time`, or the HLS media playlist. */
  | { kind: 'cmaf'; rep: string; part: 'init' | 'segment' | 'playlist'; time: bigint }
  /** The wall clock (DASH `UTCTiming`). */
  | { kind: 'time' }
  | { kind: 'ingest'; streamId: string; eventId: string | undefined }
  | {
      kind: 'fragment';
      part: 'Fragments' | 'FragmentInfo' | 'RawFragments' | 'KeyFrames';
      bitrate: number;
      attributes: Array<[string, string]>;
      track: string;
      time: bigint;
    }
  | { kind: 'unknown'; reason: string };

/** A URL that names a publishing point: its definition path relative to the root and the resource. */
export interface PointRoute {
  /** `dirs/name.isml` (or `dirs/name.ism` on demand), `/`-separated, every segment validated. */
  point: string;
  resource: Resource;
  /** `true` when `point` is an on-demand presentation (`.ism`); absent for a live `.isml` point. */
  onDemand?: true;
}

const MAX_TIME = 2n ** 64n - 1n;
/** The URL may name a point or a presentation: `.isml` anywhere (as before), or a `.ism` path segment. */
const NAMES_ONE = /\.isml|\.ism(?:\/|$)/i;
const STREAM_ID = /^[A-Za-z0-9._~-]{1,128}$/;
type FragmentPart = Extract<Resource, { kind: 'fragment' }>['part'];
const FRAGMENT_NOUNS = new Map<string, FragmentPart>(
  (['Fragments', 'FragmentInfo', 'RawFragments', 'KeyFrames'] as const).map((n) => [n.toLowerCase(), n]),
);

/** `Manifest(format=…)` values of IIS and Azure Media Services, by output; an optional `.mpd`/`.m3u8` may follow. */
const MANIFEST_FORMATS = new Map<string, 'mpd' | 'm3u8'>([
  ['mpd-time-csf', 'mpd'],
  ['mpd-time-cmaf', 'mpd'],
  ['m3u8-aapl', 'm3u8'],
  ['m3u8-cmaf', 'm3u8'],
]);
/** A representation id: `<name>=<bitrate>` and `,<key>=<value>` per custom attribute (see `representationId`). */
const REPRESENTATION = /^[A-Za-z][A-Za-z0-9_-]{0,63}=\d{1,10}(?:,[A-Za-z][A-Za-z0-9_-]{0,63}=[A-Za-z0-9_.:-]{1,64}){0,16}$/;

function badUrl(message: string): SmoothError {
  return new SmoothError('ERR_BAD_URL', message);
}

/**
 * Parses a request URL (path and query, relative to the middleware's mount point).
 * @returns `undefined` when the URL does not name a `.isml` or a `.ism` (not ours), else the route; a
 *   `.isml` segment wins over a `.ism` one
 * @throws SmoothError ERR_TRAVERSAL for `..`, backslashes, NUL, empty or absolute segments;
 *   ERR_BAD_URL for malformed percent-encoding or a malformed noun
 */
export function parseRoute(url: string): PointRoute | undefined {
  const q = url.indexOf('?');
  const raw = q === -1 ? url : url.slice(0, q);
  // Cheap first test; a '%' may hide an encoded ".isml" or an encoded traversal, so decode those.
  if (!NAMES_ONE.test(raw) && !raw.includes('%')) return undefined;
  if (!raw.startsWith('/')) {
    if (NAMES_ONE.test(raw)) throw new SmoothError('ERR_TRAVERSAL', 'request target must be an origin-relative path');
    return undefined;
  }
  const segments: string[] = [];
  for (const s of raw.slice(1).split('/')) {
    try {
      segments.push(decodeURIComponent(s));
    } catch {
      if (NAMES_ONE.test(raw)) throw badUrl('malformed percent-encoding');
      return undefined;
    }
  }
  let at = segments.findIndex((s) => /\.isml$/i.test(s));
  const onDemand = at === -1;
  if (onDemand) at = segments.findIndex((s) => /\.ism$/i.test(s));
  if (at === -1) return undefined;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '..' || s === '.' || /[\\/\0]/.test(s) || (s === '' && !(last && i > at)) || (i <= at && /^[A-Za-z]:/.test(s))) {
      throw new SmoothError('ERR_TRAVERSAL', 'path segment not allowed (.., ., backslash, NUL, empty or absolute)');
    }
  }
  // `name.isml` itself is the definition file, not a resource below it: the host (e.g. express.static
  // on the same folder) may serve it.
  if (at === segments.length - 1) return undefined;
  const route: PointRoute = { point: segments.slice(0, at + 1).join('/'), resource: parseResource(segments.slice(at + 1)) };
  if (onDemand) route.onDemand = true;
  return route;
}

/** `Noun(args)` → `[noun, args]`, noun lower-cased; `undefined` when the segment has another shape. */
function call(segment: string): [string, string] | undefined {
  const m = /^([A-Za-z]+)\((.*)\)$/.exec(segment);
  return m ? [m[1]!.toLowerCase(), m[2]!] : undefined;
}

function parseResource(rest: string[]): Resource {
  if (rest.length > 0 && rest[rest.length - 1] === '') rest = rest.slice(0, -1);
  let eventId: string | undefined;
  const first = rest[0] === undefined ? undefined : call(rest[0]);
  if (first?.[0] === 'events') {
    if (!STREAM_ID.test(first[1])) throw badUrl('malformed Events() id');
    eventId = first[1];
    rest = rest.slice(1);
  }
  if (rest.length === 1 && rest[0]!.toLowerCase() === 'manifest') return { kind: 'manifest' };
  if (rest.length === 1 && (rest[0] === '.mpd' || rest[0] === '.m3u8')) return { kind: 'output', format: rest[0] === '.mpd' ? 'mpd' : 'm3u8' };
  if (rest.length === 1 && rest[0] === 'time') return { kind: 'time' };
  if (rest.length === 3 && rest[0] === 'cmaf') return parseCmaf(rest[1]!, rest[2]!);
  // IIS documented `Manifest(format=m3u8-aapl).m3u8` for caches that go by the extension.
  const manifestFormat = rest.length === 1 ? /^manifest\(format=([a-z0-9-]+)\)(\.mpd|\.m3u8)?$/i.exec(rest[0]!) : null;
  if (manifestFormat) {
    const format = MANIFEST_FORMATS.get(manifestFormat[1]!.toLowerCase());
    if (!format) return { kind: 'unknown', reason: `manifest format ${manifestFormat[1]} is not supported` };
    return { kind: 'output', format };
  }
  const head = rest[0] === undefined ? undefined : call(rest[0]);
  if (rest.length === 1 && head?.[0] === 'manifest') return { kind: 'unknown', reason: 'malformed Manifest() format' };
  if (rest.length === 1 && head?.[0] === 'streams') {
    if (!STREAM_ID.test(head[1])) throw badUrl('Streams() id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -');
    return { kind: 'ingest', streamId: head[1], eventId };
  }
  if (rest.length === 2 && head?.[0] === 'qualitylevels') {
    const tail = call(rest[1]!);
    const part = tail && FRAGMENT_NOUNS.get(tail[0]);
    if (!tail || !part) return { kind: 'unknown', reason: 'unknown resource below QualityLevels()' };
    const [bitrateText, ...attrText] = head[1].split(',');
    if (!/^\d{1,10}$/.test(bitrateText!)) throw badUrl('QualityLevels() bitrate must be a decimal number');
    const attributes: Array<[string, string]> = attrText.map((a) => {
      const eq = a.indexOf('=');
      const k = a.slice(0, eq).trim();
      const v = a.slice(eq + 1).trim();
      if (eq < 1 || !IDENTIFIER.test(k) || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) throw badUrl('malformed QualityLevels() attribute');
      return [k, v];
    });
    // `Fragments(video=123)`; an HLS-style `,format=…` suffix is not served by this origin.
    const m = /^([A-Za-z][A-Za-z0-9_-]{0,63})=(\d{1,20})$/.exec(tail[1]);
    if (!m) {
      if (/,\s*format=/i.test(tail[1])) return { kind: 'unknown', reason: 'fragment formats are not supported' };
      throw badUrl(`${part}() must be <track>=<time>`);
    }
    const time = BigInt(m[2]!);
    if (time > MAX_TIME) throw badUrl('fragment time exceeds 2^64-1');
    return { kind: 'fragment', part, bitrate: Number(bitrateText), attributes, track: m[1]!, time };
  }
  return { kind: 'unknown', reason: 'unknown resource' };
}

/** `cmaf/<rep>/init.mp4`, `cmaf/<rep>/<time>.m4s`, `cmaf/<rep>/index.m3u8`. */
function parseCmaf(rep: string, file: string): Resource {
  if (!REPRESENTATION.test(rep)) return { kind: 'unknown', reason: 'malformed representation id' };
  if (file === 'init.mp4') return { kind: 'cmaf', rep, part: 'init', time: 0n };
  if (file === 'index.m3u8') return { kind: 'cmaf', rep, part: 'playlist', time: 0n };
  const m = /^(\d{1,20})\.m4s$/.exec(file);
  if (!m) return { kind: 'unknown', reason: 'unknown resource below cmaf/' };
  const time = BigInt(m[1]!);
  if (time > MAX_TIME) throw badUrl('segment time exceeds 2^64-1');
  return { kind: 'cmaf', rep, part: 'segment', time };
}
