/**
 * The Live Server Manifest box an encoder sends after `ftyp` (MS-SSTR 2.2.7.3, protocol doc §2.5):
 * `size, 'uuid', A5D40B30-E814-11DD-BA2F-0800200C9A66, version 0, flags 0`, then a UTF-8 SMIL document
 * with one `<video>`/`<audio>`/`<textstream>` element per track, its `<param>`s shaped like ffmpeg's.
 */
import { UUID_LIVE_SERVER_MANIFEST } from '../mp4/boxes';
import { makeBox } from '../mp4/writer';
import { escapeAttr } from '../manifest/xml';
import type { TrackInfo, TrackType } from '../model';

/** One `<switch>` element to write. */
export interface SmilTrack {
  type: TrackType;
  /** `trackID` param: the track's `track_ID` in the stream's moov. */
  trackId: number;
  /** `src` attribute: `Streams` in a Live Server Manifest, the media file in a server manifest (`.ism`). */
  src?: string;
  /** `systemBitrate` attribute (and param, as ffmpeg repeats it). */
  bitrate: number;
  /** `systemLanguage` attribute, when known. */
  language?: string | undefined;
  /** Further params in order, e.g. `[['trackName', 'video'], ['FourCC', 'H264']]`. */
  params: ReadonlyArray<readonly [string, string | number]>;
}

const UUID_BYTES = Buffer.from(UUID_LIVE_SERVER_MANIFEST, 'hex');
const TAGS: Record<TrackType, string> = { video: 'video', audio: 'audio', text: 'textstream' };

/**
 * The prefix of custom-attribute params. The library's ingest (like IIS, as far as known) reads a
 * `{namespace}_{attribute}` param as the custom attribute named after the first `_`.
 */
const CUSTOM_PREFIX = 'custom_';

/**
 * Renders the SMIL text of a Live Server Manifest (or of a server manifest in the same grammar).
 * Every value is escaped.
 * @param metas - `<meta name content>` pairs for `<head>`, e.g. `[['title', 'Channel 1']]`
 */
export function renderSmil(tracks: readonly SmilTrack[], metas: ReadonlyArray<readonly [string, string]> = []): string {
  const a = (v: string | number): string => escapeAttr(String(v));
  let out = '<?xml version="1.0" encoding="utf-8"?>\n<smil xmlns="http://www.w3.org/2001/SMIL20/Language">\n  <head>\n';
  for (const [name, content] of metas) out += `    <meta name="${a(name)}" content="${a(content)}" />\n`;
  out += '  </head>\n  <body>\n    <switch>\n';
  for (const t of tracks) {
    const tag = TAGS[t.type];
    const lang = t.language ? ` systemLanguage="${a(t.language)}"` : '';
    out += `      <${tag} src="${a(t.src ?? 'Streams')}" systemBitrate="${a(t.bitrate)}"${lang}>\n`;
    const params: Array<readonly [string, string | number]> = [['systemBitrate', t.bitrate], ['trackID', t.trackId], ...t.params];
    for (const [name, value] of params) {
      out += `        <param name="${a(name)}" value="${a(value)}" valuetype="data" />\n`;
    }
    out += `      </${tag}>\n`;
  }
  return `${out}    </switch>\n  </body>\n</smil>\n`;
}

/**
 * The params that describe a track completely, so a server needs nothing from the moov: name,
 * timescale, FourCC, CodecPrivateData, sizes (video) or audio format (audio), Subtype, a sparse track's
 * `parentTrackName`, `manifestOutput` and `Scheme`, custom attributes.
 */
export function trackParams(info: TrackInfo): Array<readonly [string, string | number]> {
  const p: Array<readonly [string, string | number | undefined]> = [
    ['trackName', info.name],
    ['timescale', info.timescale],
    ['FourCC', info.fourCC],
    ['CodecPrivateData', info.codecPrivateData],
  ];
  if (info.type === 'video') {
    p.push(
      ['MaxWidth', info.maxWidth],
      ['MaxHeight', info.maxHeight],
      ['DisplayWidth', info.displayWidth],
      ['DisplayHeight', info.displayHeight],
      ['NALUnitLengthField', info.nalUnitLengthField],
    );
  } else if (info.type === 'audio') {
    p.push(
      ['AudioTag', info.audioTag],
      ['Channels', info.channels],
      ['SamplingRate', info.samplingRate],
      ['BitsPerSample', info.bitsPerSample],
      ['PacketSize', info.packetSize],
    );
  }
  if (info.subtype) p.push(['Subtype', info.subtype]);
  if (info.parent !== undefined) {
    // Both values spelled out: Azure requires manifestOutput on every sparse track, true or not.
    p.push(['parentTrackName', info.parent], ['manifestOutput', info.manifestOutput ? 'true' : 'false']);
  }
  p.push(['Scheme', info.scheme]);
  for (const [name, value] of info.customAttributes) p.push([CUSTOM_PREFIX + name, value]);
  return p.filter((e): e is readonly [string, string | number] => e[1] !== undefined && e[1] !== '');
}

/** A track of an outgoing stream: its description and its `track_ID` in that stream. */
export interface StreamTrack {
  trackId: number;
  info: TrackInfo;
}

/** The SMIL text of the Live Server Manifest for the tracks of one stream. */
export function liveServerManifestText(tracks: readonly StreamTrack[], title?: string, creator = 'live-smooth simulated encoder'): string {
  const metas: Array<[string, string]> = [['creator', creator]];
  if (title !== undefined) metas.push(['title', title]);
  return renderSmil(
    tracks.map((t) => ({
      type: t.info.type,
      trackId: t.trackId,
      bitrate: t.info.bitrate,
      language: t.info.language,
      params: trackParams(t.info),
    })),
    metas,
  );
}

/** The Live Server Manifest uuid box (version 0, flags 0, UTF-8 SMIL without BOM, as ffmpeg writes it). */
export function liveServerManifestBox(tracks: readonly StreamTrack[], title?: string, creator?: string): Buffer {
  // uuid boxes carry the user type before the FullBox version and flags.
  const versionAndFlags = Buffer.alloc(4);
  return makeBox('uuid', UUID_BYTES, versionAndFlags, Buffer.from(liveServerManifestText(tracks, title, creator), 'utf8'));
}
