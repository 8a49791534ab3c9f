/**
 * The HLS output (RFC 8216, version 7, fMP4 segments): a multivariant playlist of an
 * {@link OutputSnapshot} and one media playlist per representation. Video representations are variant
 * streams; audio ones are renditions of one `audio` group that every variant refers to; captions and
 * subtitles (IMSC1 in fMP4, the segments DASH serves) are renditions of one `subs` group. SCTE-35 ad
 * markers are `EXT-X-DATERANGE` tags in every media playlist.
 */
import type { OutputGroup, OutputRepresentation, OutputSnapshot, PlaylistEntry } from './output';
import { spliceAttribute } from './scte35';

/** `GROUP-ID` of the subtitle renditions. */
const SUBTITLES_GROUP = 'subs';
/**
 * `CHARACTERISTICS` of a caption rendition (Apple's HLS authoring spec: captions for the deaf and hard
 * of hearing describe sounds as well as speech).
 */
const CAPTION_CHARACTERISTICS = 'public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound';

/**
 * The form of a representation id in URLs (and in the DASH `Representation@id`, which players substitute
 * into URLs unchanged): `,` becomes `%2C` and `=`/`:` stay, both legal in a path segment. Encoding the
 * comma keeps HLS attribute lists unambiguous to parsers that split on it, and using one form in both
 * outputs gives a segment one URL, so DASH and HLS players share CDN cache entries.
 */
export function encodeRepresentationId(id: string): string {
  // Lone surrogates would make encodeURIComponent throw; ids are validated upstream, but a renderer must not fail.
  const wellFormed = id.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  return encodeURIComponent(wellFormed).replace(/%3D/gi, '=').replace(/%3A/gi, ':');
}

/**
 * Renders the multivariant playlist: one `EXT-X-MEDIA` per audio and per caption or subtitle
 * representation, and one `EXT-X-STREAM-INF` per video representation (or per audio representation when
 * there is no video), naming the `audio` and `subs` groups. Groups without listed segments are left
 * out. `BANDWIDTH` and `AVERAGE-BANDWIDTH` are both the declared bitrates (video + the highest audio), as
 * no measured rates are known here; `CODECS` is left out when any codec of the combination is unknown,
 * because a partial list would misdescribe the stream.
 */
export function renderMaster(s: OutputSnapshot): string {
  const listed = s.groups.filter((g) => g.segments.length > 0);
  const video = listed.filter((g) => g.type === 'video').flatMap((g) => g.representations);
  const audioGroups = listed.filter((g) => g.type === 'audio');
  const audio = audioGroups.flatMap((g) => g.representations.map((r) => ({ g, r })));
  // Only renditions whose format a player can be told (CODECS): IMSC1 in fMP4.
  const subtitles = listed
    .filter((g) => g.role !== undefined)
    .flatMap((g) => g.representations.filter((r) => r.codecs !== undefined).map((r) => ({ g, r })));
  const subtitleCodecs = [...new Set(subtitles.map(({ r }) => r.codecs!))];
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];

  const subtitleNames = new Set<string>();
  for (const { g, r } of subtitles) {
    lines.push(`#EXT-X-MEDIA:${attributeList([
      ['TYPE', 'SUBTITLES'],
      ['GROUP-ID', quoted(SUBTITLES_GROUP)],
      ['NAME', quoted(renditionName(g, r, subtitleNames))],
      ['LANGUAGE', g.language === undefined ? undefined : quoted(g.language)],
      // Shown only when asked for (or by the viewer's accessibility settings, AUTOSELECT).
      ['DEFAULT', 'NO'],
      ['AUTOSELECT', 'YES'],
      ['FORCED', 'NO'],
      ['CHARACTERISTICS', g.role === 'caption' ? quoted(CAPTION_CHARACTERISTICS) : undefined],
      ['URI', quoted(playlistUri(r))],
    ])}`);
  }
  const subtitlesAttribute = subtitles.length > 0 ? quoted(SUBTITLES_GROUP) : undefined;

  if (video.length === 0) {
    for (const { r } of audio) {
      const codecs = [r.codecs, ...subtitleCodecs];
      lines.push(`#EXT-X-STREAM-INF:${attributeList([
        ['BANDWIDTH', r.info.bitrate],
        ['AVERAGE-BANDWIDTH', r.info.bitrate],
        ['CODECS', codecs.every((c) => c !== undefined) ? quoted(codecs.join(',')) : undefined],
        ['SUBTITLES', subtitlesAttribute],
      ])}`, playlistUri(r));
    }
    return lines.join('\n') + '\n';
  }

  const names = new Set<string>();
  audio.forEach(({ g, r }, i) => {
    lines.push(`#EXT-X-MEDIA:${attributeList([
      ['TYPE', 'AUDIO'],
      ['GROUP-ID', quoted('audio')],
      ['NAME', quoted(renditionName(g, r, names))],
      ['LANGUAGE', g.language === undefined ? undefined : quoted(g.language)],
      ['DEFAULT', i === 0 ? 'YES' : 'NO'],
      ['AUTOSELECT', 'YES'],
      ['CHANNELS', r.info.channels === undefined ? undefined : quoted(String(r.info.channels))],
      ['URI', quoted(playlistUri(r))],
    ])}`);
  });

  const audioBitrate = Math.max(0, ...audio.map(({ r }) => r.info.bitrate));
  const audioCodecs = [...new Set(audio.map(({ r }) => r.codecs))];
  for (const v of video) {
    // Every format of the renditions a variant may play goes into its CODECS (RFC 8216 §4.3.4.2).
    const codecs = [v.codecs, ...audioCodecs, ...subtitleCodecs];
    const bandwidth = v.info.bitrate + audioBitrate;
    const { maxWidth: w, maxHeight: h } = v.info;
    lines.push(`#EXT-X-STREAM-INF:${attributeList([
      ['BANDWIDTH', bandwidth],
      ['AVERAGE-BANDWIDTH', bandwidth],
      ['CODECS', codecs.every((c) => c !== undefined) ? quoted(codecs.join(',')) : undefined],
      ['RESOLUTION', w && h ? `${w}x${h}` : undefined],
      ['FRAME-RATE', v.frameRate !== undefined && v.frameRate > 0 && Number.isFinite(v.frameRate) ? v.frameRate.toFixed(3) : undefined],
      ['AUDIO', audio.length > 0 ? quoted('audio') : undefined],
      ['SUBTITLES', subtitlesAttribute],
    ])}`, playlistUri(v));
  }
  return lines.join('\n') + '\n';
}

/**
 * Renders the media playlist of a group's representations: the same text serves each of them, since its
 * URIs are relative to the playlist's own `cmaf/<rep>/`.
 * `EXT-X-PROGRAM-DATE-TIME` is written on the first segment and after each discontinuity, where the
 * mapping from media time to wall clock restarts; elsewhere players derive it from the durations. A
 * sparse group's holes are `EXT-X-GAP` entries ({@link OutputGroup.playlist}). The SCTE-35 ad markers
 * of the snapshot follow the header as `EXT-X-DATERANGE` tags (see {@link dateRanges}).
 */
export function renderMedia(s: OutputSnapshot, group: OutputGroup): string {
  const ts = BigInt(group.timescale);
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${group.targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${group.mediaSequence}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${group.discontinuitySequence}`,
    '#EXT-X-MAP:URI="init.mp4"',
  ];
  const start = BigInt(Math.round(s.availabilityStart));
  const entries: readonly PlaylistEntry[] =
    group.playlist ?? group.segments.map((f, i) => (group.discontinuities.has(i) ? { ...f, discontinuity: true } : f));
  // RFC 8216 §4.3.2.7: a playlist with date ranges maps them with a program date-time.
  if (entries.length > 0) lines.push(...dateRanges(s));
  entries.forEach((f, i) => {
    if (f.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (i === 0 || f.discontinuity) {
      lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(Number(start + roundDiv(f.time * 1000n, ts))).toISOString()}`);
    }
    if (f.gap) lines.push('#EXT-X-GAP');
    lines.push(`#EXTINF:${seconds3(roundDiv(f.duration * 1000n, ts))},`, `${f.time}.m4s`);
  });
  if (s.ended) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}

/**
 * The SCTE-35 ad markers as `EXT-X-DATERANGE` tags (RFC 8216 §4.3.2.7.1), oldest first: `ID` the
 * marker track and its output time (unique, and the same in every playlist and reload), `START-DATE`
 * on the program date-time mapping of the playlists (`availabilityStart` + output time),
 * `PLANNED-DURATION` the announced break when known, and the `splice_info_section` in hex as
 * `SCTE35-OUT`, `SCTE35-IN` or `SCTE35-CMD` by what it commands. No `DURATION`: the actual length is
 * known only from a return signal, which a break that returns on its own never sends.
 */
export function dateRanges(s: OutputSnapshot): string[] {
  const start = BigInt(Math.round(s.availabilityStart));
  const out: string[] = [];
  for (const stream of s.eventStreams ?? []) {
    const ts = BigInt(stream.timescale);
    for (const e of stream.events) {
      const hex = Buffer.from(e.message.buffer, e.message.byteOffset, e.message.byteLength).toString('hex').toUpperCase();
      out.push(`#EXT-X-DATERANGE:${attributeList([
        ['ID', quoted(`${stream.name}-${e.time}`)],
        ['START-DATE', quoted(new Date(Number(start + roundDiv(e.time * 1000n, ts))).toISOString())],
        ['PLANNED-DURATION', e.duration > 0n ? seconds3(roundDiv(e.duration * 1000n, ts)) : undefined],
        [spliceAttribute(e.message), `0x${hex}`],
      ])}`);
    }
  }
  return out;
}

function playlistUri(r: OutputRepresentation): string {
  return `cmaf/${encodeRepresentationId(r.id)}/index.m3u8`;
}

/**
 * A unique `NAME` per rendition of the group (RFC 8216 §4.3.4.1.1): the group's name, with the bitrate
 * when the group has several representations, and the representation id as the last resort.
 */
function renditionName(g: OutputGroup, r: OutputRepresentation, used: Set<string>): string {
  let name = g.representations.length > 1 ? `${g.name} ${Math.round(r.info.bitrate / 1000)} kbps` : g.name;
  if (used.has(name)) name = r.id;
  used.add(name);
  return name;
}

function attributeList(pairs: ReadonlyArray<readonly [string, string | number | undefined]>): string {
  return pairs.flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])).join(',');
}

/**
 * A quoted-string: it cannot contain `"`, CR or LF and has no escape, so `"` becomes `'` and control
 * characters go (names and languages come from encoders).
 */
function quoted(value: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/"/g, "'")}"`;
}

/** Milliseconds as seconds with exactly 3 decimals. */
function seconds3(ms: bigint): string {
  const sign = ms < 0n ? '-' : '';
  const abs = ms < 0n ? -ms : ms;
  return `${sign}${abs / 1000n}.${(abs % 1000n).toString().padStart(3, '0')}`;
}

/** Nearest integer of a / b (b > 0), halves up, also for negative a. */
function roundDiv(a: bigint, b: bigint): bigint {
  const n = 2n * a + b;
  const d = 2n * b;
  const q = n / d;
  return n % d !== 0n && n < 0n ? q - 1n : q;
}
