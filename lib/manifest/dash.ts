/**
 * The DASH output: an MPD (ISO/IEC 23009-1, DASH-IF live and CMAF profiles) of an {@link OutputSnapshot}.
 * One Period from time 0, one AdaptationSet per group with a `$Time$` SegmentTemplate and a
 * SegmentTimeline, so that the MPD lists exactly the fragments the origin holds. Captions are a text
 * AdaptationSet like any other (IMSC1 in `stpp`, with a `Role`); SCTE-35 ad markers are an
 * `EventStream` of the Period (SCTE 214-1 §6.7, `urn:scte:scte35:2014:xml+bin`).
 */
import type { FragmentTime } from '../model';
import { TIME_URL_PLACEHOLDER, type OutputEventStream, type OutputGroup, type OutputRepresentation, type OutputSnapshot } from './output';
import { encodeRepresentationId } from './hls';
import { attrs } from './xml';

const PROFILES = 'urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019';
/** SCTE 214-1 §6.7.4: each Event holds a `Signal` with the binary splice_info_section in base64. */
export const SCTE35_EVENT_SCHEME = 'urn:scte:scte35:2014:xml+bin';
/** Namespace of the `Signal` and `Binary` elements (SCTE 35 XML schema, 2016). */
const SCTE35_NAMESPACE = 'http://www.scte.org/schemas/35/2016';
const MIME_TYPES = { video: 'video/mp4', audio: 'audio/mp4', text: 'application/mp4' } as const;
/**
 * Segment length assumed while nothing is listed yet: the update period must not be zero (players would
 * poll without pause), and 2 s is the usual Smooth fragment.
 */
const NOTHING_LISTED_MS = 2000n;

/**
 * Renders the MPD of a snapshot. A live point is a `dynamic` presentation anchored at
 * `availabilityStart`; an ended one is `static` (on demand) and starts at 0 through
 * `presentationTimeOffset`. Groups without listed segments or representations are left out. Durations
 * derived from the longest segment are rounded up to the millisecond, so that none understates it.
 */
export function renderMpd(s: OutputSnapshot): string {
  const groups = s.groups.flatMap((g, index) => (g.segments.length > 0 && g.representations.length > 0 ? [{ g, index }] : []));
  // The media make the presentation: a caption that began before the window, or runs long, neither
  // moves its start nor slows the updates.
  const listed = groups.map(({ g }) => g).filter((g) => !g.sparse);
  const longestOf = (of: readonly OutputGroup[]): bigint => {
    let out = 0n;
    for (const g of of) {
      const d = g.segments.reduce((m, f) => (f.duration > m ? f.duration : m), 0n);
      const ms = ceilDiv(d * 1000n, BigInt(g.timescale));
      if (ms > out) out = ms;
    }
    return out;
  };
  let longest = longestOf(listed);
  if (longest === 0n) longest = NOTHING_LISTED_MS;
  // maxSegmentDuration bounds every segment, the sparse ones too.
  const longestSegment = longestOf(groups.map(({ g }) => g));
  const span = spanOf(listed);

  let root: Array<readonly [string, string | undefined]>;
  if (s.ended) {
    root = [
      ['type', 'static'],
      // Rounded up so that the end of the last segment is inside the presentation.
      ['mediaPresentationDuration', isoDuration(span ? ceilDiv((span.end - span.start) * 1000n, span.scale) : 0n)],
    ];
  } else {
    // Segments are listed only once `lookahead` successors exist, so the newest listed one is already that
    // far behind real time; two more segments leave room for the request and its download.
    const delay = BigInt(s.lookahead + 2) * longest;
    const spanMs = span ? roundDiv((span.end - span.start) * 1000n, span.scale) : 0n;
    let depth = s.window > 0 ? BigInt(Math.round(s.window * 1000)) : spanMs;
    // TSB − SPD must stay positive, or the live edge would fall outside the window (Shaka #1493).
    if (depth < delay + longest) depth = delay + longest;
    root = [
      ['type', 'dynamic'],
      // Wall clock of the live presentation's start: output time liveStart, the templates' offset.
      ['availabilityStartTime', isoTime(s.availabilityStart + Number(s.liveStart) * 1000)],
      ['publishTime', isoTime(s.publishTime)],
      ['minimumUpdatePeriod', isoDuration(longest)],
      ['timeShiftBufferDepth', isoDuration(depth)],
      ['suggestedPresentationDelay', isoDuration(delay)],
    ];
  }

  const lines = [
    '<?xml version="1.0" encoding="utf-8"?>',
    `<MPD${attrs([
      ['xmlns', 'urn:mpeg:dash:schema:mpd:2011'],
      ['profiles', PROFILES],
      ...root,
      ['minBufferTime', isoDuration(2n * longest)],
      ['maxSegmentDuration', isoDuration(longestSegment > longest ? longestSegment : longest)],
    ])}>`,
    '  <Period id="0" start="PT0S">',
  ];
  // All groups share one wall-clock timeline: the common earliest instant, in a group's timescale,
  // makes the static presentation start at 0 with audio and video still in step. Rounded down so that
  // no group's first segment lands before 0.
  // Live: the session's first fragment is period time 0 (GStreamer's DASH demuxers look for the live
  // edge relative to where the SegmentTimeline starts); whole seconds, so exact in every timescale.
  const offsetIn = (timescale: number): bigint | undefined =>
    s.ended ? (span ? floorDiv(span.start * BigInt(timescale), span.scale) : undefined) : s.liveStart * BigInt(timescale);
  // EventStreams come before the AdaptationSets (ISO/IEC 23009-1 Table 4).
  for (const e of s.eventStreams ?? []) eventStream(lines, e, offsetIn(e.timescale) ?? 0n);
  for (const { g, index } of groups) adaptationSet(lines, g, index, offsetIn(g.timescale));
  lines.push('  </Period>');
  if (!s.ended) {
    // Inserted verbatim: the HTTP edge replaces the placeholder with the absolute path of the point's clock.
    lines.push(`  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="${TIME_URL_PLACEHOLDER}"/>`);
  }
  lines.push('</MPD>', '');
  return lines.join('\n');
}

/**
 * The SCTE-35 messages of an ad-marker track (SCTE 214-1 §6.7.4): one Event each, its
 * `presentationTime` on the period timeline through the stream's `presentationTimeOffset` (the same
 * offset as the AdaptationSets, in the stream's timescale), its `duration` the break's when known, its
 * `id` the message's. An event before the period start is left out (its time would be negative).
 * Listed while its fragment is (the parent's window), so players that join late still see the break
 * they join in.
 */
function eventStream(lines: string[], e: OutputEventStream, offset: bigint): void {
  const events = e.events.filter((ev) => ev.time >= offset);
  if (events.length === 0) return;
  lines.push(
    `    <EventStream${attrs([
      ['schemeIdUri', SCTE35_EVENT_SCHEME],
      ['timescale', e.timescale],
      ['presentationTimeOffset', offset === 0n ? undefined : offset],
    ])}>`,
  );
  for (const ev of events) {
    const a = attrs([
      ['presentationTime', ev.time],
      ['duration', ev.duration > 0n ? ev.duration : undefined],
      ['id', ev.id],
    ]);
    const binary = Buffer.from(ev.message.buffer, ev.message.byteOffset, ev.message.byteLength).toString('base64');
    // Base64 needs no escaping.
    lines.push(`      <Event${a}><Signal xmlns="${SCTE35_NAMESPACE}"><Binary>${binary}</Binary></Signal></Event>`);
  }
  lines.push('    </EventStream>');
}

function adaptationSet(lines: string[], g: OutputGroup, index: number, offset: bigint | undefined): void {
  const video = g.type === 'video';
  const reps = g.representations;
  const maxOf = (f: (r: OutputRepresentation) => number | undefined): number | undefined =>
    video ? Math.max(0, ...reps.map((r) => f(r) ?? 0)) || undefined : undefined;
  lines.push(
    `    <AdaptationSet${attrs([
      ['id', index],
      ['contentType', g.type],
      ['mimeType', MIME_TYPES[g.type]],
      ['lang', g.language],
      ['segmentAlignment', 'true'],
      ['startWithSAP', 1],
      ['maxWidth', maxOf((r) => r.info.maxWidth)],
      ['maxHeight', maxOf((r) => r.info.maxHeight)],
      ['par', video ? pictureAspectRatio(reps) : undefined],
    ])}>`,
  );
  if (g.role !== undefined) lines.push(`      <Role${attrs([['schemeIdUri', 'urn:mpeg:dash:role:2011'], ['value', g.role]])}/>`);
  const channels = g.type === 'audio' ? sharedChannels(reps) : undefined;
  if (channels !== undefined) lines.push(`      ${channelConfiguration(channels)}`);
  lines.push(
    `      <SegmentTemplate${attrs([
      ['timescale', g.timescale],
      ['presentationTimeOffset', offset],
      ['initialization', 'cmaf/$RepresentationID$/init.mp4'],
      ['media', 'cmaf/$RepresentationID$/$Time$.m4s'],
    ])}>`,
    '        <SegmentTimeline>',
    ...timeline(g.segments),
    '        </SegmentTimeline>',
    '      </SegmentTemplate>',
  );
  for (const r of reps) {
    const a = attrs([
      // The id is substituted into URLs as it is: the URL form keeps DASH and HLS segment URLs identical.
      ['id', encodeRepresentationId(r.id)],
      ['bandwidth', r.info.bitrate],
      ['codecs', r.codecs],
      ['width', video ? r.info.maxWidth : undefined],
      ['height', video ? r.info.maxHeight : undefined],
      ['frameRate', video ? frameRateText(r.frameRate) : undefined],
      ['audioSamplingRate', g.type === 'audio' ? r.info.samplingRate : undefined],
    ]);
    // Representations of one set normally agree on channels; only a set that mixes them says it per Representation.
    const own = g.type === 'audio' && channels === undefined && r.info.channels !== undefined;
    lines.push(own ? `      <Representation${a}>\n        ${channelConfiguration(r.info.channels!)}\n      </Representation>` : `      <Representation${a}/>`);
  }
  lines.push('    </AdaptationSet>');
}

function channelConfiguration(channels: number): string {
  return `<AudioChannelConfiguration${attrs([
    ['schemeIdUri', 'urn:mpeg:dash:23003:3:audio_channel_configuration:2011'],
    ['value', channels],
  ])}/>`;
}

function sharedChannels(reps: readonly OutputRepresentation[]): number | undefined {
  const first = reps[0]?.info.channels;
  return first !== undefined && reps.every((r) => r.info.channels === first) ? first : undefined;
}

/** `t` on the first `S` and after any gap or overlap; `r` counts the repeats after the first of a run. */
function timeline(segments: readonly FragmentTime[]): string[] {
  const out: string[] = [];
  let expected: bigint | undefined;
  for (let i = 0; i < segments.length; ) {
    const { time, duration } = segments[i]!;
    let run = 1;
    while (i + run < segments.length) {
      const next = segments[i + run]!;
      const prev = segments[i + run - 1]!;
      if (next.duration !== duration || next.time !== prev.time + prev.duration) break;
      run++;
    }
    out.push(`          <S${time === expected ? '' : ` t="${time}"`} d="${duration}"${run > 1 ? ` r="${run - 1}"` : ''}/>`);
    const last = segments[i + run - 1]!;
    expected = last.time + last.duration;
    i += run;
  }
  return out;
}

/** First start and last end over all groups, on a timescale every group's times convert to exactly. */
function spanOf(groups: readonly OutputGroup[]): { start: bigint; end: bigint; scale: bigint } | undefined {
  if (groups.length === 0) return undefined;
  const scale = groups.reduce((l, g) => lcm(l, BigInt(g.timescale)), 1n);
  let start: bigint | undefined;
  let end: bigint | undefined;
  for (const g of groups) {
    const k = scale / BigInt(g.timescale);
    const first = g.segments[0]!.time * k;
    const last = g.segments[g.segments.length - 1]!;
    const stop = (last.time + last.duration) * k;
    if (start === undefined || first < start) start = first;
    if (end === undefined || stop > end) end = stop;
  }
  return { start: start!, end: end!, scale };
}

/** `par` of the set, when all its representations show the same picture aspect ratio. */
function pictureAspectRatio(reps: readonly OutputRepresentation[]): string | undefined {
  let par: string | undefined;
  for (const r of reps) {
    const w = r.info.displayWidth ?? r.info.maxWidth;
    const h = r.info.displayHeight ?? r.info.maxHeight;
    if (!w || !h) return undefined;
    const d = Number(gcd(BigInt(w), BigInt(h)));
    const text = `${w / d}:${h / d}`;
    if (par !== undefined && par !== text) return undefined;
    par = text;
  }
  return par;
}

/**
 * `frameRate` as the MPD's FrameRateType allows it (an integer or a fraction, no decimals). Measured rates
 * carry noise, so values within 0.005 of an integer or of an NTSC rate (n × 1000/1001) snap to it.
 */
function frameRateText(fps: number | undefined): string | undefined {
  if (fps === undefined || !Number.isFinite(fps) || fps <= 0) return undefined;
  const n = Math.round(fps);
  if (n > 0 && Math.abs(fps - n) < 0.005) return String(n);
  const ntsc = Math.round(fps * 1.001);
  if (ntsc > 0 && Math.abs(fps - (ntsc * 1000) / 1001) < 0.005) return `${ntsc * 1000}/1001`;
  const milli = BigInt(Math.round(fps * 1000));
  if (milli === 0n) return undefined;
  const d = gcd(milli, 1000n);
  return `${milli / d}/${1000n / d}`;
}

function isoTime(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}

/** `PT<seconds>S` with up to 3 decimals. */
function isoDuration(ms: bigint): string {
  const whole = ms / 1000n;
  const frac = (ms % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return `PT${whole}${frac ? `.${frac}` : ''}S`;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return -floorDiv(-a, b);
}

function roundDiv(a: bigint, b: bigint): bigint {
  return floorDiv(2n * a + b, 2n * b);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
}

function lcm(a: bigint, b: bigint): bigint {
  return (a / gcd(a, b)) * b;
}
