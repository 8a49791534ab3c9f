/**
 * Publishing point definitions: IIS `.isml` files (SMIL 2.0 with `<meta name content>` settings in
 * `<head>`, protocol doc §5). Reading returns the metas a file sets; writing edits the file's text in
 * place, so unknown metas, comments, formatting and the `<body>` survive byte for byte.
 */
import { XMLValidator } from 'fast-xml-parser';
import { SmoothError } from './errors';
import { escapeAttr } from './manifest/xml';
import { smilParser } from './smil';

/** Largest `lookaheadChunks`: tfrf counts fit a byte, and held-back fragments stay in memory. */
export const MAX_LOOKAHEAD = 32;

/**
 * Settings of one publishing point, keyed by their IIS meta names (protocol doc §5.2). Units: seconds
 * for times and lengths, bits per second for bitrates.
 */
export interface PointSettings {
  /** Title of the point. */
  title: string | undefined;
  /** Handler selector; `liveSmoothStreaming` for live points. */
  module: string;
  /** `Push` (encoders POST to the point) or `Pull` (the point follows the upstream points its `<body>` lists). */
  sourceType: 'Push' | 'Pull';
  /** `;`-separated subset of `Fragments;Streams;Archives`. */
  publishing: string;
  /** Expected event length, seconds; written as the manifest `Duration` (0 = unknown). */
  estimatedTime: number;
  /** Fragments held back and announced in tfrf (0–32). */
  lookaheadChunks: number;
  /** DVR window, seconds; 0 keeps the whole event (within the byte budget). */
  manifestWindowLength: number;
  /** An Idle point starts on the first encoder POST or client GET. */
  startOnFirstRequest: boolean;
  /** Archive folder of this point (relative: to the media root); else the origin's `archiveRoot`. */
  archivePath: string | undefined;
  /** Archive segment length, seconds (0 = one presentation, else at least {@link MIN_ARCHIVE_SEGMENT}). */
  archiveSegmentLength: number;
  /** A new encoder on a Stopped point shuts it down and starts a fresh session. */
  restartOnEncoderReconnect: boolean;
  /**
   * What an encoder whose times go back beyond the resend window gets (a restarted encoder, e.g. ffmpeg
   * again from 0): `continue` shifts its times to follow the timeline; `refuse` answers 409 and closes;
   * `reset` drops the window and starts a fresh session. Not an IIS meta.
   */
  encoderRestart: EncoderRestart;
  /**
   * Output formats besides Smooth (always offered), see {@link outputFormats}: empty for DASH and HLS
   * both, else a comma- or space-separated list (`m3u8-aapl`, `mpd-time-csf`, `smooth` for neither…).
   */
  formats: string;
  'm3u8-aapl-segmentlength': number;
  'm3u8-aapl-maxbitrate': number;
  'm3u8-aapl-allowcaching': boolean;
  'm3u8-aapl-backwardcompatible': boolean;
  'm3u8-aapl-enableencryption': boolean;
  /** Present in IIS-written files; semantics undocumented (kept, not used). */
  filters: string;
}

/** What a publishing point does with a restarted encoder ({@link PointSettings.encoderRestart}). */
export type EncoderRestart = 'continue' | 'refuse' | 'reset';

/** A meta name of {@link PointSettings}. */
export type MetaName = keyof PointSettings;

/** Some settings, e.g. what one `.isml` file or one mapping sets. */
export type SettingsOverrides = { -readonly [K in MetaName]?: PointSettings[K] };

/**
 * Shortest `archiveSegmentLength`, seconds: a presentation shorter than a minute is not what segmenting
 * is for, and every segment costs a folder and a manifest.
 */
export const MIN_ARCHIVE_SEGMENT = 60;

type Kind = 'string' | 'uint' | 'bool' | 'source' | 'publishing' | 'restart';
const META_KINDS: Readonly<Record<MetaName, readonly [Kind, number?]>> = {
  title: ['string'],
  module: ['string'],
  sourceType: ['source'],
  publishing: ['publishing'],
  estimatedTime: ['uint'],
  lookaheadChunks: ['uint', MAX_LOOKAHEAD],
  manifestWindowLength: ['uint'],
  startOnFirstRequest: ['bool'],
  archivePath: ['string'],
  archiveSegmentLength: ['uint'],
  restartOnEncoderReconnect: ['bool'],
  encoderRestart: ['restart'],
  formats: ['string'],
  'm3u8-aapl-segmentlength': ['uint'],
  'm3u8-aapl-maxbitrate': ['uint'],
  'm3u8-aapl-allowcaching': ['bool'],
  'm3u8-aapl-backwardcompatible': ['bool'],
  'm3u8-aapl-enableencryption': ['bool'],
  filters: ['string'],
};

/** Every meta name this library reads, in the order it writes them. */
export const META_NAMES = Object.keys(META_KINDS) as MetaName[];

/** The defaults IIS documents for each meta (protocol doc §5.2). */
export const IIS_DEFAULTS: Readonly<PointSettings> = Object.freeze({
  title: undefined,
  module: 'liveSmoothStreaming',
  sourceType: 'Push',
  publishing: 'Fragments;Streams',
  estimatedTime: 0,
  lookaheadChunks: 2,
  manifestWindowLength: 0,
  startOnFirstRequest: false,
  archivePath: undefined,
  archiveSegmentLength: 0,
  restartOnEncoderReconnect: false,
  encoderRestart: 'continue',
  formats: '',
  'm3u8-aapl-segmentlength': 10,
  'm3u8-aapl-maxbitrate': 3000000,
  'm3u8-aapl-allowcaching': false,
  'm3u8-aapl-backwardcompatible': true,
  'm3u8-aapl-enableencryption': false,
  filters: '',
});

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_DEFINITION', message);
}

/** True when `name` is a meta name this library knows. */
export function isMetaName(name: string): name is MetaName {
  return Object.prototype.hasOwnProperty.call(META_KINDS, name);
}

/**
 * Converts a meta value (text from a file, or a JSON/option value) to its typed form.
 * @throws SmoothError ERR_BAD_DEFINITION naming the meta
 */
export function parseMeta<K extends MetaName>(name: K, value: unknown): PointSettings[K] {
  const [kind, max = 0xffffffff] = META_KINDS[name];
  const text = typeof value === 'string' ? value.trim() : value;
  const show = String(value).slice(0, 40);
  switch (kind) {
    case 'string':
      if (typeof value !== 'string' || value.length > 1024) throw bad(`${name} must be a string of at most 1024 characters`);
      return value as PointSettings[K];
    case 'uint': {
      const n = typeof text === 'number' ? text : typeof text === 'string' && /^\d{1,10}$/.test(text) ? Number(text) : NaN;
      if (!Number.isInteger(n) || n < 0 || n > max) throw bad(`${name}="${show}" is not a whole number between 0 and ${max}`);
      return n as PointSettings[K];
    }
    case 'bool': {
      if (typeof text === 'boolean') return text as PointSettings[K];
      const v = typeof text === 'string' ? text.toLowerCase() : '';
      if (v !== 'true' && v !== 'false') throw bad(`${name}="${show}" is not true or false`);
      return (v === 'true') as PointSettings[K];
    }
    case 'source': {
      const v = typeof text === 'string' ? text.toLowerCase() : '';
      if (v !== 'push' && v !== 'pull') throw bad(`${name}="${show}" is not Push or Pull`);
      return (v === 'push' ? 'Push' : 'Pull') as PointSettings[K];
    }
    case 'restart': {
      const v = typeof text === 'string' ? text.toLowerCase() : '';
      if (v !== 'continue' && v !== 'refuse' && v !== 'reset') throw bad(`${name}="${show}" is not continue, refuse or reset`);
      return v as PointSettings[K];
    }
    case 'publishing': {
      // IIS documents a comma-separated list; the files it writes use ';'. Accept both, write ';'.
      if (typeof text !== 'string') throw bad(`${name} must be a list of Fragments, Streams, Archives`);
      const tokens = text.split(/[;,]/).map((t) => t.trim()).filter(Boolean);
      const known = ['Fragments', 'Streams', 'Archives'];
      const out = tokens.map((t) => known.find((k) => k.toLowerCase() === t.toLowerCase()));
      if (out.some((t) => t === undefined)) throw bad(`${name}="${show}" may only list Fragments, Streams, Archives`);
      return out.join(';') as PointSettings[K];
    }
  }
}

/** What an `.isml` file says. */
export interface Definition {
  /** Metas the file sets (known names only; unknown metas are left in the text). */
  overrides: SettingsOverrides;
  /** `<body>` references (`<ref src>`): pull sources or push targets. */
  sources: string[];
}

const xml = smilParser(['meta', 'ref', 'par', 'seq', 'switch']);

type Node = Record<string, unknown>;

function collectRefs(node: unknown, out: string[]): void {
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Node)) {
    if (key === 'ref') for (const r of value as Node[]) if (typeof r.src === 'string') out.push(r.src);
    if (typeof value === 'object') collectRefs(value, out);
  }
}

/**
 * Parses the structure of an `.isml` (well-formed XML, one `<smil>` root, at most one `<head>`) without
 * checking meta values. `undefined` for an empty file.
 * @throws SmoothError ERR_BAD_DEFINITION with the reason
 */
function parseStructure(text: string): { head: Node | undefined; body: unknown } | undefined {
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') return undefined;
  const valid = XMLValidator.validate(body);
  if (valid !== true) throw bad(`not well-formed XML (line ${valid.err.line}): ${valid.err.msg}`);
  const doc = xml.parse(body) as Node;
  // Exactly one root, <smil>: the validator lets several roots through (the parser then merges them),
  // and an element without children or kept attributes, like `<smil xmlns="…"/>`, parses as ''.
  const roots = Object.keys(doc).filter((k) => !k.startsWith('?'));
  if (roots.length !== 1 || roots[0] !== 'smil' || Array.isArray(doc.smil)) throw bad('root element is not <smil>');
  const smil = typeof doc.smil === 'object' ? (doc.smil as Node) : {};
  if (Array.isArray(smil.head)) throw bad('more than one <head>');
  const head = typeof smil.head === 'object' ? (smil.head as Node) : undefined;
  return { head, body: smil.body };
}

/**
 * Reads an `.isml` document. An empty file sets nothing (all inherited).
 * @throws SmoothError ERR_BAD_DEFINITION with the reason
 */
export function readDefinition(text: string): Definition {
  const doc = parseStructure(text);
  const overrides: SettingsOverrides = {};
  if (!doc) return { overrides, sources: [] };
  for (const meta of (doc.head?.meta as Node[] | undefined) ?? []) {
    if (typeof meta.name !== 'string' || !isMetaName(meta.name)) continue; // unknown metas: kept, ignored
    const name = meta.name;
    (overrides as Record<string, unknown>)[name] = parseMeta(name, typeof meta.content === 'string' ? meta.content : '');
  }
  const sources: string[] = [];
  collectRefs(doc.body, sources);
  return { overrides, sources };
}

/**
 * Merges layers of settings (least specific first) and checks the result for contradictions.
 * @throws SmoothError ERR_BAD_DEFINITION for a contradictory or unsupported combination
 */
export function resolveSettings(layers: readonly SettingsOverrides[], sources: readonly string[] = []): PointSettings {
  const s: PointSettings = Object.assign({}, IIS_DEFAULTS, ...layers.map(defined)) as PointSettings;
  if (s.restartOnEncoderReconnect && !s.startOnFirstRequest) {
    throw bad('restartOnEncoderReconnect needs startOnFirstRequest (IIS: "must be combined with startOnFirstRequest")');
  }
  if (s.archiveSegmentLength > 0 && !s.publishing.split(';').includes('Archives')) {
    throw bad('archiveSegmentLength is set but publishing does not include Archives');
  }
  if (s.archiveSegmentLength > 0 && s.archiveSegmentLength < MIN_ARCHIVE_SEGMENT) {
    throw bad(`archiveSegmentLength must be 0 (one presentation) or at least ${MIN_ARCHIVE_SEGMENT} seconds`);
  }
  if (s.sourceType === 'Pull') pullSources(sources);
  return s;
}

/** Upstreams a pulled point may list. */
const MAX_PULL_SOURCES = 8;

/**
 * The upstream publishing points of a `sourceType=Pull` definition, checked: absolute http(s) URLs
 * of a live point (`….isml`), without credentials, a query or a fragment, at most
 * {@link MAX_PULL_SOURCES}; a trailing `/` is dropped.
 * @throws SmoothError ERR_BAD_DEFINITION when there is none or one is not such a URL
 */
export function pullSources(sources: readonly string[]): string[] {
  if (sources.length === 0) throw bad('sourceType Pull lists no source in <body> (<ref src="http://host/path/name.isml"/>)');
  if (sources.length > MAX_PULL_SOURCES) throw bad(`sourceType Pull lists more than ${MAX_PULL_SOURCES} sources`);
  return sources.map((src) => {
    const show = src.slice(0, 80);
    let url: URL;
    try {
      url = new URL(src);
    } catch {
      throw bad(`pull source "${show}" is not a URL`);
    }
    // An empty query or fragment (`….isml?`) leaves `search` and `hash` empty but stays in `href`, where
    // it would swallow the `/Manifest` appended to it.
    if (src.length > 2048 || !/^https?:$/.test(url.protocol) || url.username || url.password || /[?#]/.test(url.href) || !/\.isml\/?$/i.test(url.pathname)) {
      throw bad(`pull source "${show}" must be an http(s) URL of a publishing point (…/name.isml), without credentials, query or fragment`);
    }
    return url.href.replace(/\/$/, '');
  });
}

function defined(o: SettingsOverrides): SettingsOverrides {
  const out: SettingsOverrides = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Formats a typed value the way IIS-written files do (`True`/`False` for booleans). */
function formatMeta(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** An empty definition, as IIS Manager would create it. */
const TEMPLATE = `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
  <head>
    <meta name="module" content="liveSmoothStreaming" />
  </head>
  <body />
</smil>
`;

/** A start tag found in the text. */
interface Tag {
  start: number;
  end: number;
  /** Namespace prefix with its colon, or `''`. */
  prefix: string;
  /** The attribute text between the name and `/>` or `>`, and where it starts. */
  attrs: string;
  attrsAt: number;
  selfClosing: boolean;
}

/**
 * The text with comments, CDATA sections, processing instructions and the DOCTYPE blanked out (same
 * length), so element searches never match markup inside them (a commented-out meta stays a comment).
 */
function maskMarkup(text: string): string {
  return text.replace(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<!DOCTYPE(?:[^>[]|\[[\s\S]*?\])*>/gi, (m) =>
    ' '.repeat(m.length),
  );
}

/** Start tags of `local` (any prefix) in `masked` between `from` and `to`; quoted values may hold `>`. */
function startTags(masked: string, local: string, from = 0, to = masked.length): Tag[] {
  const re = new RegExp(`<([\\w.-]+:)?${local}(?=[\\s/>])((?:[^>"']|"[^"]*"|'[^']*')*?)(\\/?)>`, 'g');
  re.lastIndex = from;
  const out: Tag[] = [];
  for (let m = re.exec(masked); m && m.index < to; m = re.exec(masked)) {
    const prefix = m[1] ?? '';
    out.push({
      start: m.index,
      end: m.index + m[0].length,
      prefix,
      attrs: m[2]!,
      attrsAt: m.index + 1 + prefix.length + local.length,
      selfClosing: m[3] === '/',
    });
  }
  return out;
}

/** The attributes of a start tag: name → value span (absolute offsets of `name="value"`) and raw value. */
function attributes(tag: Tag): Map<string, { start: number; end: number; value: string }> {
  const out = new Map<string, { start: number; end: number; value: string }>();
  const re = /([^\s=/]+)\s*=\s*("([^"]*)"|'([^']*)')/g;
  for (let m = re.exec(tag.attrs); m; m = re.exec(tag.attrs)) {
    out.set(m[1]!, { start: tag.attrsAt + m.index, end: tag.attrsAt + m.index + m[0].length, value: m[3] ?? m[4] ?? '' });
  }
  return out;
}

/** The `<head>` of the document: its start tag and, unless it is self-closing, where `</head>` starts and ends. */
function findHead(masked: string): { open: Tag; close: { start: number; end: number } | undefined } | undefined {
  const open = startTags(masked, 'head')[0];
  if (!open) return undefined;
  if (open.selfClosing) return { open, close: undefined };
  const re = /<\/([\w.-]+:)?head\s*>/g;
  re.lastIndex = open.end;
  const m = re.exec(masked);
  return { open, close: m ? { start: m.index, end: m.index + m[0].length } : undefined };
}

/** The `<meta>` elements of `<head>` named `name` (with a `</meta>` that directly follows, if any). */
function findMetas(masked: string, name: string): Tag[] {
  const head = findHead(masked);
  if (!head?.close) return [];
  return startTags(masked, 'meta', head.open.end, head.close.start)
    .filter((t) => attributes(t).get('name')?.value === name)
    .map((t) => {
      if (t.selfClosing) return t;
      const close = /^\s*<\/([\w.-]+:)?meta\s*>/.exec(masked.slice(t.end, head.close!.start));
      return close ? { ...t, end: t.end + close[0].length } : t;
    });
}

/** Indentation before `at` when only spaces and tabs separate it from the start of its line, else undefined. */
function indentAt(text: string, at: number): string | undefined {
  let i = at;
  while (i > 0 && (text[i - 1] === ' ' || text[i - 1] === '\t')) i--;
  return i === 0 || text[i - 1] === '\n' ? text.slice(i, at) : undefined;
}

/** Removes `[start, end)`, and its whole line when nothing else is on it. */
function removeSpan(text: string, start: number, end: number): string {
  const indent = indentAt(text, start);
  const rest = /^[ \t]*(\r?\n|$)/.exec(text.slice(end));
  if (indent !== undefined && rest) return text.slice(0, start - indent.length) + text.slice(end + rest[0].length);
  return text.slice(0, start) + text.slice(end);
}

/** Adds a meta to `<head>` (creating `<head>` when there is none), matching indentation and line endings. */
function addMeta(text: string, masked: string, name: string, value: string): string {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const head = findHead(masked);
  if (head) {
    const meta = `<${head.open.prefix}meta name="${name}" content="${value}" />`;
    const headIndent = indentAt(text, head.open.start);
    if (head.open.selfClosing) {
      // `<head/>` → `<head>…</head>`, keeping its attributes.
      const open = text.slice(head.open.start, head.open.end).replace(/\s*\/>$/, '>');
      const close = `</${head.open.prefix}head>`;
      const inner = headIndent === undefined ? `${open}${meta}${close}` : `${open}${eol}${headIndent}  ${meta}${eol}${headIndent}${close}`;
      return text.slice(0, head.open.start) + inner + text.slice(head.open.end);
    }
    if (!head.close) throw bad('cannot add a setting: <head> is not closed');
    const closeIndent = indentAt(text, head.close.start);
    if (closeIndent === undefined) return text.slice(0, head.close.start) + meta + text.slice(head.close.start);
    const metas = startTags(masked, 'meta', head.open.end, head.close.start);
    const last = metas[metas.length - 1];
    const indent = (last && indentAt(text, last.start)) ?? `${closeIndent}  `;
    const at = head.close.start - closeIndent.length;
    return `${text.slice(0, at)}${indent}${meta}${eol}${text.slice(at)}`;
  }
  const smil = startTags(masked, 'smil')[0];
  if (!smil) throw bad('cannot add a setting: the file has no <smil> element to hold one');
  const p = smil.prefix;
  const block = `${eol}  <${p}head>${eol}    <${p}meta name="${name}" content="${value}" />${eol}  </${p}head>`;
  if (!smil.selfClosing) return text.slice(0, smil.end) + block + text.slice(smil.end);
  const open = text.slice(smil.start, smil.end).replace(/\s*\/>$/, '>');
  return `${text.slice(0, smil.start)}${open}${block}${eol}</${p}smil>${text.slice(smil.end)}`;
}

/**
 * Applies changes to the text of an `.isml`: a value replaces the meta's `content` (or adds the meta
 * before `</head>`), `null` removes the meta so the setting inherits again. Everything else in the
 * file is kept as it was: other metas, comments (a commented-out meta is not touched), the `<body>`,
 * indentation and line endings. A meta that appears more than once is changed (or removed) everywhere,
 * since the last one is the one read.
 * @param text - current file contents (`''` for a new file)
 * @param changes - meta name → value, or `null` to remove
 * @throws SmoothError ERR_BAD_DEFINITION for an unknown meta name, an invalid value, a file that is not
 *   well-formed `<smil>`, or a result that still has an invalid value
 */
export function writeDefinition(text: string, changes: Readonly<Record<string, unknown>>): string {
  let out = text.trim() === '' ? TEMPLATE : text;
  // Refuse to edit a file whose structure we cannot read; a bad value is fine (it may be what is being
  // repaired): the result is checked as a whole below.
  parseStructure(out);
  for (const [name, raw] of Object.entries(changes)) {
    if (!isMetaName(name)) throw bad(`unknown setting "${name.slice(0, 40)}"`);
    const value = raw === null || raw === undefined ? undefined : escapeAttr(formatMeta(parseMeta(name, raw) as string | number | boolean));
    const masked = maskMarkup(out);
    const found = findMetas(masked, name);
    if (value === undefined) {
      for (const t of found.reverse()) out = removeSpan(out, t.start, t.end);
      continue;
    }
    if (found.length === 0) {
      out = addMeta(out, masked, name, value);
      continue;
    }
    for (const t of found.reverse()) {
      const content = attributes(t).get('content');
      if (content) out = `${out.slice(0, content.start)}content="${value}"${out.slice(content.end)}`;
      else {
        const at = t.attrsAt + t.attrs.trimEnd().length;
        out = `${out.slice(0, at)} content="${value}"${out.slice(at)}`;
      }
    }
  }
  readDefinition(out);
  return out;
}

/** The outputs a point offers besides Smooth. */
export interface OutputFormats {
  dash: boolean;
  hls: boolean;
}

/** `formats` names, case-insensitive, by output; `smooth` names Smooth alone (always offered). */
const FORMAT_NAMES: ReadonlyMap<string, keyof OutputFormats | 'smooth'> = new Map([
  ['smooth', 'smooth'],
  ['mss', 'smooth'],
  ['dash', 'dash'],
  ['mpd', 'dash'],
  ['mpd-time-csf', 'dash'],
  ['mpd-time-cmaf', 'dash'],
  ['hls', 'hls'],
  ['m3u8', 'hls'],
  ['m3u8-aapl', 'hls'],
  ['m3u8-cmaf', 'hls'],
]);

/**
 * The outputs a `formats` setting offers besides Smooth. Empty (the default) offers DASH and HLS; a
 * list offers what it names (IIS's `m3u8-aapl` is HLS, `smooth` alone turns both off). Names this
 * library does not serve (IIS's `m3u8-aapl-v3`, `f4m`…) are ignored.
 */
export function outputFormats(formats: string): OutputFormats {
  const names = formats.split(/[\s,]+/).filter((n) => n !== '');
  if (names.length === 0) return { dash: true, hls: true };
  const out = { dash: false, hls: false };
  for (const n of names) {
    const f = FORMAT_NAMES.get(n.toLowerCase());
    if (f === 'dash' || f === 'hls') out[f] = true;
  }
  return out;
}
