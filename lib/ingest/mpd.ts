/**
 * The MPD of a CMAF upload (DASH-IF live media ingest, Interface 1, one segment per request, as
 * ffmpeg's `-f dash` sends it): which representations it announces and at which paths their init and
 * media segments will arrive, from each `SegmentTemplate@initialization` and `@media`. Paths are
 * relative to the publishing point and bounded: a few segments of safe characters, never `..`.
 */
import { SmoothError } from '../errors';
import type { TrackType } from '../model';
import { smilParser } from '../smil';
import { LSM_LIMITS, readXml } from './header';

/** Bounds on what an upload MPD may hold and name. */
export const MPD_LIMITS = {
  /** Bytes of MPD text (a live MPD's `SegmentTimeline` grows with the window: ffmpeg's `-window_size` keeps it short). */
  maxBytes: 1 << 20,
  /** Representations in one MPD. */
  maxRepresentations: 64,
  /** Characters of a `SegmentTemplate@initialization` or `@media`. */
  maxTemplateLength: 256,
  /** Characters of a representation id. */
  maxIdLength: 48,
} as const;

/** Bounds of the MPD's XML once its segment timelines are left out (see {@link parseUploadMpd}). */
const XML_LIMITS = { ...LSM_LIMITS, maxChars: MPD_LIMITS.maxBytes };

/** An upload path: at most 8 `/`-separated segments of `A-Z a-z 0-9 . _ ~ -`, 512 characters in all. */
const PATH_SEGMENT = /^[A-Za-z0-9._~-]{1,128}$/;
const MAX_PATH_SEGMENTS = 8;
const MAX_PATH_LENGTH = 512;
const REPRESENTATION_ID = new RegExp(`^[A-Za-z0-9._~-]{1,${MPD_LIMITS.maxIdLength}}$`);
/** A BCP 47 tag short enough to name a StreamIndex (`audio_<lang>`). */
const LANGUAGE = /^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8}){0,3}$/;

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_HEADER', `MPD: ${message}`);
}

/**
 * Checks a path below a publishing point that an upload names or a template builds.
 * @returns the path
 * @throws SmoothError ERR_TRAVERSAL for `.` or `..` segments; ERR_BAD_URL for anything else outside the
 *   bounds (empty segments, other characters, too many or too long segments)
 */
export function checkUploadPath(path: string): string {
  if (path.length === 0 || path.length > MAX_PATH_LENGTH) throw new SmoothError('ERR_BAD_URL', `an upload path has 1 to ${MAX_PATH_LENGTH} characters`);
  const segments = path.split('/');
  if (segments.length > MAX_PATH_SEGMENTS) throw new SmoothError('ERR_BAD_URL', `an upload path has at most ${MAX_PATH_SEGMENTS} segments`);
  for (const s of segments) {
    if (s === '.' || s === '..') throw new SmoothError('ERR_TRAVERSAL', 'an upload path may not hold . or .. segments');
    if (!PATH_SEGMENT.test(s)) throw new SmoothError('ERR_BAD_URL', 'an upload path is /-separated segments of 1-128 characters of A-Z a-z 0-9 . _ ~ -');
  }
  return path;
}

/** True when an upload to `path` is an MPD. */
export function isMpdPath(path: string): boolean {
  return /\.mpd$/i.test(path);
}

/** One representation an upload MPD announces. */
export interface UploadRepresentation {
  /** `Representation@id` (validated: see {@link MPD_LIMITS}). */
  readonly id: string;
  /** From `@contentType` or `@mimeType`; `undefined` when the MPD says neither (the init segment tells). */
  readonly type: TrackType | undefined;
  /** Why the point does not take it (a text or image representation), if it does not. */
  readonly unsupported: string | undefined;
  /** `AdaptationSet@lang` (or the representation's), when given and well-formed. */
  readonly language: string | undefined;
  /** `@bandwidth`, when given. */
  readonly bandwidth: number | undefined;
  /** Path of its init segment, below the point. */
  readonly init: string;
  /** Matches the paths of its media segments, below the point. */
  readonly media: RegExp;
}

/** What an upload MPD says. */
export interface UploadMpd {
  /** `MPD@type="static"`: the presentation is complete (an encoder's last MPD). */
  readonly static: boolean;
  readonly representations: readonly UploadRepresentation[];
}

/** A representation's template segments: literal text and `$…$` identifiers. */
type Part = string | { id: 'RepresentationID' | 'Bandwidth' | 'Number' | 'Time' | 'SubNumber'; width: number };

/** Splits a `SegmentTemplate` attribute (ISO 23009-1 §5.3.9.4.4) into literal text and identifiers. */
function templateParts(template: string, which: string): Part[] {
  if (template.length > MPD_LIMITS.maxTemplateLength) throw bad(`SegmentTemplate@${which} is longer than ${MPD_LIMITS.maxTemplateLength} characters`);
  const pieces = template.split('$');
  if (pieces.length % 2 === 0) throw bad(`SegmentTemplate@${which} "${template}" has an unmatched $`);
  const parts: Part[] = [];
  pieces.forEach((piece, i) => {
    if (i % 2 === 0) {
      if (piece) parts.push(piece);
      return;
    }
    if (piece === '') {
      parts.push('$');
      return;
    }
    const m = /^(RepresentationID|Bandwidth|Number|Time|SubNumber)(?:%0([1-9]\d?)d)?$/.exec(piece);
    if (!m || (m[1] === 'RepresentationID' && m[2] !== undefined)) throw bad(`SegmentTemplate@${which} has an unknown identifier $${piece.slice(0, 32)}$`);
    parts.push({ id: m[1] as Extract<Part, object>['id'], width: m[2] === undefined ? 0 : Number(m[2]) });
  });
  return parts;
}

/** Paths below a point that it serves (Manifest, its DASH and HLS outputs, the time, Smooth requests). */
const SERVED = /^(manifest|time|\.mpd|\.m3u8|cmaf\/.*|(qualitylevels|streams|events|fragments)\(.*)$/i;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A representation's template as a path (`variable` false: an init segment) or a path pattern, below
 * the point; `dir` is the MPD's folder there, which relative templates start from.
 */
function resolve(parts: readonly Part[], id: string, bandwidth: number | undefined, dir: string, which: string): { path: string; pattern: string; variable: boolean } {
  let path = '';
  let pattern = '';
  let variable = false;
  for (const p of parts) {
    if (typeof p === 'string') {
      path += p;
      pattern += escapeRegExp(p);
    } else if (p.id === 'RepresentationID' || p.id === 'Bandwidth') {
      if (p.id === 'Bandwidth' && bandwidth === undefined) throw bad(`SegmentTemplate@${which} names $Bandwidth$ but representation ${id} has none`);
      const text = p.id === 'RepresentationID' ? id : String(bandwidth).padStart(p.width, '0');
      path += text;
      pattern += escapeRegExp(text);
    } else {
      variable = true;
      path += '0'.repeat(Math.max(1, p.width));
      pattern += '\\d{1,20}';
    }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('/')) throw bad(`SegmentTemplate@${which} must be a relative path (DASH-IF ingest: no BaseURL, no absolute URL)`);
  const full = dir ? `${dir}/${path}` : path;
  try {
    checkUploadPath(full);
  } catch (err) {
    throw bad(`SegmentTemplate@${which} of representation ${id} names ${full.slice(0, 80)}: ${(err as Error).message}`);
  }
  // Paths the point serves itself are never routed to the upload: segments there could not arrive.
  if (SERVED.test(full)) throw bad(`SegmentTemplate@${which} of representation ${id} names ${full.slice(0, 80)}, a path the point serves (its outputs)`);
  return { path: full, pattern: `^${dir ? `${escapeRegExp(dir)}/` : ''}${pattern}$`, variable };
}

type Node = Record<string, unknown>;
const attr = (n: Node | undefined, name: string): string | undefined => (typeof n?.[name] === 'string' ? (n[name] as string) : undefined);
/** An element's attributes and children; an empty element (`<Period/>`) reads as an empty string. */
const node = (v: unknown): Node | undefined => (v === '' ? {} : v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : undefined);
const nodes = (v: unknown): Node[] => (Array.isArray(v) ? (v as unknown[]).map(node).filter((n): n is Node => n !== undefined) : []);

const xml = smilParser(['Period', 'AdaptationSet', 'Representation', 'BaseURL']);

/**
 * The MPD without its `SegmentTimeline`s, which only list segments: the part read is then a few KB
 * whatever the window. One pass; an unclosed timeline is left as it is (and the XML check refuses it).
 */
function withoutTimelines(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const open = text.indexOf('<SegmentTimeline', at);
    if (open === -1) break;
    if (!/[\s>/]/.test(text.charAt(open + '<SegmentTimeline'.length))) {
      out += text.slice(at, open + 1);
      at = open + 1;
      continue;
    }
    const selfClosing = /^<SegmentTimeline\b[^<>]*\/>/.exec(text.slice(open, open + 1024));
    const close = selfClosing ? open + selfClosing[0].length : text.indexOf('</SegmentTimeline>', open);
    if (close === -1) break;
    out += text.slice(at, open);
    at = selfClosing ? close : close + '</SegmentTimeline>'.length;
  }
  return out + text.slice(at);
}

/** The type a `@contentType` or a `@mimeType` gives, and why the point does not take it, if so. */
function typeOf(contentType: string | undefined, mimeType: string | undefined): { type: TrackType | undefined; unsupported?: string } {
  const said = contentType ?? mimeType?.split('/')[0];
  if (said === undefined) return { type: undefined };
  if (said === 'video' || said === 'audio' || said === 'text') return { type: said };
  if (said === 'application') return { type: 'text', unsupported: 'metadata representations are not supported yet (video, audio and text are)' };
  return { type: undefined, unsupported: `representations of content type ${said.slice(0, 32)} are not supported (video, audio and text are)` };
}

/**
 * Reads an upload MPD.
 * @param text - the MPD (at most {@link MPD_LIMITS}.maxBytes)
 * @param dir - the MPD's folder below the point (`''` for `x.isml/manifest.mpd`), which its relative
 *   templates start from
 * @throws SmoothError ERR_BAD_HEADER (with the reason) for text that is not a bounded MPD with one
 *   Period of at most {@link MPD_LIMITS}.maxRepresentations representations, each with a distinct
 *   valid id and init and media templates that name distinct valid paths
 */
export function parseUploadMpd(text: string, dir: string): UploadMpd {
  if (Buffer.byteLength(text) > MPD_LIMITS.maxBytes) throw bad(`larger than ${MPD_LIMITS.maxBytes} bytes`);
  const doc = readXml(withoutTimelines(text), xml, 'MPD', XML_LIMITS);
  const mpd = node(doc.MPD);
  if (!mpd) throw bad('no <MPD> root element');
  const periods = nodes(mpd.Period);
  if (periods.length !== 1) throw bad(`DASH-IF ingest posts one Period, this MPD has ${periods.length}`);
  const period = periods[0]!;
  const sets = nodes(period.AdaptationSet);
  const anyBase = [mpd, period, ...sets, ...sets.flatMap((s) => nodes(s.Representation))].some((n) => n.BaseURL !== undefined);
  if (anyBase) throw bad('BaseURL is not supported: DASH-IF ingest names segments relative to the MPD');
  const count = sets.reduce((n, s) => n + nodes(s.Representation).length, 0);
  if (count > MPD_LIMITS.maxRepresentations) throw bad(`lists ${count} representations; a point takes at most ${MPD_LIMITS.maxRepresentations}`);
  const representations: UploadRepresentation[] = [];
  const inits = new Set<string>();
  const medias = new Set<string>();
  for (const set of sets) {
    for (const rep of nodes(set.Representation)) {
      const id = attr(rep, 'id');
      if (id === undefined || !REPRESENTATION_ID.test(id)) {
        throw bad(`Representation@id "${(id ?? '').slice(0, 64)}" must be 1-${MPD_LIMITS.maxIdLength} characters of A-Z a-z 0-9 . _ ~ -`);
      }
      if (representations.some((r) => r.id === id)) throw bad(`two representations have the id ${id}`);
      const bandwidthText = attr(rep, 'bandwidth');
      if (bandwidthText !== undefined && !/^[1-9]\d{0,9}$/.test(bandwidthText)) throw bad(`Representation@bandwidth of ${id} is not a positive number`);
      const bandwidth = bandwidthText === undefined ? undefined : Number(bandwidthText);
      if (bandwidth !== undefined && bandwidth > 0xffffffff) throw bad(`Representation@bandwidth of ${id} exceeds 2^32-1`);
      // A representation's SegmentTemplate attributes override its AdaptationSet's, which override the Period's.
      const template: Node = { ...node(period.SegmentTemplate), ...node(set.SegmentTemplate), ...node(rep.SegmentTemplate) };
      const initTemplate = attr(template, 'initialization');
      const mediaTemplate = attr(template, 'media');
      if (initTemplate === undefined || mediaTemplate === undefined) throw bad(`representation ${id} has no SegmentTemplate with initialization and media`);
      const init = resolve(templateParts(initTemplate, 'initialization'), id, bandwidth, dir, 'initialization');
      if (init.variable) throw bad(`SegmentTemplate@initialization of ${id} names $Number$, $Time$ or $SubNumber$`);
      const media = resolve(templateParts(mediaTemplate, 'media'), id, bandwidth, dir, 'media');
      if (!media.variable) throw bad(`SegmentTemplate@media of ${id} names neither $Number$ nor $Time$`);
      if (inits.has(init.path) || medias.has(media.pattern)) throw bad(`representation ${id} shares its segment paths with another; templates need $RepresentationID$`);
      inits.add(init.path);
      medias.add(media.pattern);
      const { type, unsupported } = typeOf(attr(set, 'contentType'), attr(rep, 'mimeType') ?? attr(set, 'mimeType'));
      const lang = attr(rep, 'lang') ?? attr(set, 'lang');
      representations.push({
        id,
        type,
        unsupported,
        language: lang !== undefined && LANGUAGE.test(lang) ? lang : undefined,
        bandwidth,
        init: init.path,
        media: new RegExp(media.pattern),
      });
    }
  }
  return { static: attr(mpd, 'type') === 'static', representations };
}

/**
 * Which representation's segment an upload to `path` is.
 * @returns the representation and whether `path` is its init segment or one of its media segments, or
 *   `undefined` when no template of `mpd` names it
 */
export function matchUploadPath(mpd: UploadMpd, path: string): { rep: UploadRepresentation; kind: 'init' | 'media' } | undefined {
  for (const rep of mpd.representations) if (rep.init === path) return { rep, kind: 'init' };
  for (const rep of mpd.representations) if (rep.media.test(path)) return { rep, kind: 'media' };
  return undefined;
}
