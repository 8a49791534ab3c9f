/**
 * Sparse tracks in the DASH and HLS renderers: captions as a text AdaptationSet with its Role and as an
 * HLS SUBTITLES rendition (IMSC1 in CODECS), SCTE-35 ad markers as an MPD EventStream (SCTE 214-1) and
 * as EXT-X-DATERANGE tags in every media playlist; and the reading of Azure's SCTE-35 samples.
 */
import { scte35Sample, spliceInsertSection } from '../../../lib/encoder/scte35';
import { SCTE35_EVENT_SCHEME, renderMpd } from '../../../lib/manifest/dash';
import { dateRanges, renderMaster, renderMedia } from '../../../lib/manifest/hls';
import type { OutputEventStream, OutputGroup, OutputSnapshot } from '../../../lib/manifest/output';
import { readMarkerSample, spliceAttribute } from '../../../lib/manifest/scte35';
import { AST, TS, aacRun, group, info, outputSnapshot, rep, run } from '../../helpers/output';

const S = BigInt(TS);
/** Output times: the session's first fragment at 10 s, as the anchor puts it. */
const T0 = 10n * S;
const VIDEO = [rep(info('video', 800_000), 'avc1.64001f', 25)];
const AUDIO = [rep(info('audio', 128_000), 'mp4a.40.2')];
const CAPTIONS = [rep(info('text', 1000, { name: 'captions', fourCC: 'TTML', codecPrivateData: '', subtype: 'CAPT', language: 'en', parent: 'video' }), 'stpp.ttml.im1t')];

const section = (eventId: number, out = true): Buffer =>
  spliceInsertSection({ eventId, pts: 900_000n * BigInt(eventId), duration: 2_700_000n, autoReturn: true, outOfNetwork: out });

const MARKERS: OutputEventStream = {
  name: 'ads',
  timescale: TS,
  events: [
    { id: 7, time: T0 + 4n * S, duration: 30n * S, message: section(7) },
    { id: 8, time: T0 + 40n * S + 1234n, duration: 0n, message: section(8) },
  ],
};

function captions(segments = run(T0, 2n * S, 5), over: Partial<OutputGroup> = {}): OutputGroup {
  return group(CAPTIONS, segments, { role: 'caption', sparse: true, ...over });
}

function snapshot(over: Partial<OutputSnapshot> = {}, text: OutputGroup = captions()): OutputSnapshot {
  return outputSnapshot([group(VIDEO, run(T0, 2n * S, 5)), group(AUDIO, aacRun(T0, 5)), text], { liveStart: 10n, eventStreams: [MARKERS], ...over });
}

/** The element `name` of an MPD (with its content) whose attributes include `match`. */
function element(mpd: string, name: string, match: string): string {
  const m = new RegExp(`<${name}[^>]*${match}[^>]*>[\\s\\S]*?</${name}>`).exec(mpd);
  if (!m) throw new Error(`no <${name}> with ${match} in\n${mpd}`);
  return m[0];
}

describe('MPD', () => {
  const mpd = renderMpd(snapshot());

  it('lists captions as a text AdaptationSet: application/mp4, IMSC1 codecs, language and Role', () => {
    const set = element(mpd, 'AdaptationSet', 'contentType="text"');
    expect(set).toMatch(/^<AdaptationSet id="2" contentType="text" mimeType="application\/mp4" lang="en" /);
    expect(set).toContain('<Role schemeIdUri="urn:mpeg:dash:role:2011" value="caption"/>');
    expect(set).toContain('<Representation id="captions=1000" bandwidth="1000" codecs="stpp.ttml.im1t"/>');
    expect(set).toContain('presentationTimeOffset="100000000"');
    expect(set).toContain('<S t="100000000" d="20000000" r="4"/>');
  });

  it('gives subtitles and descriptions their Role, and writes gaps of a sparse timeline with explicit times', () => {
    const gappy = captions([{ time: T0, duration: 2n * S }, { time: T0 + 6n * S, duration: 2n * S }, { time: T0 + 8n * S, duration: 3n * S }], { role: 'subtitle' });
    const set = element(renderMpd(snapshot({}, gappy)), 'AdaptationSet', 'contentType="text"');
    expect(set).toContain('value="subtitle"');
    expect(set.match(/<S [^>]*\/>/g)).toEqual(['<S t="100000000" d="20000000"/>', '<S t="160000000" d="20000000"/>', '<S d="30000000"/>']);
    expect(element(renderMpd(snapshot({}, captions(undefined, { role: 'description' }))), 'AdaptationSet', 'contentType="text"')).toContain('value="description"');
  });

  it('lists the ad markers as an EventStream of the Period, before the AdaptationSets, on the period timeline', () => {
    const stream = element(mpd, 'EventStream', 'schemeIdUri');
    expect(stream.split('\n')[0]).toBe(`<EventStream schemeIdUri="${SCTE35_EVENT_SCHEME}" timescale="10000000" presentationTimeOffset="100000000">`);
    expect(SCTE35_EVENT_SCHEME).toBe('urn:scte:scte35:2014:xml+bin');
    const events = stream.match(/<Event [\s\S]*?<\/Event>/g)!;
    expect(events).toEqual([
      `<Event presentationTime="140000000" duration="300000000" id="7"><Signal xmlns="http://www.scte.org/schemas/35/2016"><Binary>${section(7).toString('base64')}</Binary></Signal></Event>`,
      // Duration unknown (0): no duration.
      `<Event presentationTime="500001234" id="8"><Signal xmlns="http://www.scte.org/schemas/35/2016"><Binary>${section(8).toString('base64')}</Binary></Signal></Event>`,
    ]);
    expect(mpd.indexOf('<EventStream')).toBeLessThan(mpd.indexOf('<AdaptationSet'));
    expect(mpd.indexOf('<EventStream')).toBeGreaterThan(mpd.indexOf('<Period'));
  });

  it('leaves out events before the period start and EventStreams with none left', () => {
    const early: OutputEventStream = { ...MARKERS, events: [{ id: 1, time: T0 - 1n, duration: S, message: section(1) }] };
    expect(renderMpd(snapshot({ eventStreams: [early] }))).not.toContain('<EventStream');
    expect(renderMpd(snapshot({ eventStreams: [] }))).not.toContain('<EventStream');
  });

  it('keeps the presentation bounds of the media: a long caption only raises maxSegmentDuration', () => {
    const long = captions([{ time: T0 - 6n * S, duration: 10n * S }]);
    const text = renderMpd(snapshot({}, long));
    const plain = renderMpd(outputSnapshot([group(VIDEO, run(T0, 2n * S, 5)), group(AUDIO, aacRun(T0, 5))], { liveStart: 10n }));
    const attr = (t: string, a: string): string | undefined => new RegExp(` ${a}="([^"]+)"`).exec(t)?.[1];
    for (const a of ['minimumUpdatePeriod', 'suggestedPresentationDelay', 'minBufferTime']) expect(attr(text, a)).toBe(attr(plain, a));
    expect(attr(text, 'maxSegmentDuration')).toBe('PT10S');
    // On demand, the span (and the offsets) come from the media too.
    const ended = renderMpd(snapshot({ ended: true }, long));
    expect(attr(ended, 'mediaPresentationDuration')).toBe(attr(renderMpd(outputSnapshot([group(VIDEO, run(T0, 2n * S, 5)), group(AUDIO, aacRun(T0, 5))], { ended: true })), 'mediaPresentationDuration'));
    expect(element(ended, 'EventStream', 'schemeIdUri')).toContain(`presentationTimeOffset="${T0}"`);
  });
});

describe('HLS', () => {
  const lines = (text: string): string[] => text.trimEnd().split('\n');

  it('offers the captions as a SUBTITLES rendition every variant refers to, with IMSC1 in CODECS', () => {
    const master = lines(renderMaster(snapshot()));
    expect(master).toContain(
      '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="captions",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,' +
        'CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound",URI="cmaf/captions=1000/index.m3u8"',
    );
    const variants = master.filter((l) => l.startsWith('#EXT-X-STREAM-INF:'));
    expect(variants).toHaveLength(1);
    expect(variants[0]).toContain('CODECS="avc1.64001f,mp4a.40.2,stpp.ttml.im1t"');
    expect(variants[0]!.endsWith(',AUDIO="audio",SUBTITLES="subs"')).toBe(true);
  });

  it('subtitles get no CHARACTERISTICS; audio-only variants refer to the rendition too', () => {
    const master = renderMaster(outputSnapshot([group(AUDIO, aacRun(T0, 5)), captions(undefined, { role: 'subtitle' })]));
    expect(master).not.toContain('CHARACTERISTICS');
    expect(master).toContain('#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2,stpp.ttml.im1t",SUBTITLES="subs"');
  });

  it('without captions, no SUBTITLES attribute or rendition', () => {
    const master = renderMaster(outputSnapshot([group(VIDEO, run(T0, 2n * S, 5))]));
    expect(master).not.toMatch(/SUBTITLES/);
  });

  it('writes every ad marker as an EXT-X-DATERANGE of every media playlist, dated on the program date-time mapping', () => {
    const s = snapshot();
    const expected = [
      `#EXT-X-DATERANGE:ID="ads-140000000",START-DATE="${new Date(AST + 14_000).toISOString()}",PLANNED-DURATION=30.000,SCTE35-OUT=0x${section(7).toString('hex').toUpperCase()}`,
      `#EXT-X-DATERANGE:ID="ads-500001234",START-DATE="${new Date(AST + 50_000).toISOString()}",SCTE35-OUT=0x${section(8).toString('hex').toUpperCase()}`,
    ];
    expect(dateRanges(s)).toEqual(expected);
    for (const g of s.groups) {
      const text = lines(renderMedia(s, g));
      expect(text.filter((l) => l.startsWith('#EXT-X-DATERANGE:'))).toEqual(expected);
      // After the header, with a program date-time in the playlist to map them.
      expect(text.indexOf(expected[0]!)).toBeGreaterThan(text.indexOf('#EXT-X-MAP:URI="init.mp4"'));
      expect(text.some((l) => l.startsWith('#EXT-X-PROGRAM-DATE-TIME:'))).toBe(true);
    }
    // The first segment is dated 4 s before the first marker.
    const video = lines(renderMedia(s, s.groups[0]!));
    expect(video).toContain(`#EXT-X-PROGRAM-DATE-TIME:${new Date(AST + 10_000).toISOString()}`);
  });

  it('names the splice by its command: SCTE35-IN for a return, SCTE35-CMD for anything else', () => {
    expect(spliceAttribute(section(1))).toBe('SCTE35-OUT');
    expect(spliceAttribute(section(1, false))).toBe('SCTE35-IN');
    const timeSignal = Buffer.from(section(1));
    timeSignal[13] = 0x06;
    expect(spliceAttribute(timeSignal)).toBe('SCTE35-CMD');
    const s = snapshot({ eventStreams: [{ ...MARKERS, events: [{ ...MARKERS.events[0]!, message: section(7, false) }] }] });
    expect(dateRanges(s)[0]).toMatch(/,SCTE35-IN=0x[0-9A-F]+$/);
  });

  it('writes a sparse playlist as its entries say: holes as EXT-X-GAP, the parent\'s discontinuities', () => {
    const playlist = [
      { time: T0, duration: 2n * S },
      { time: T0 + 2n * S, duration: 2n * S, gap: true },
      { time: T0 + 4n * S, duration: 2n * S, discontinuity: true },
    ];
    const text = renderMedia(snapshot({ eventStreams: [] }), captions(run(T0, 2n * S, 1), { playlist, discontinuitySequence: 3, mediaSequence: 5 }));
    expect(lines(text)).toEqual([
      '#EXTM3U',
      '#EXT-X-VERSION:7',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:5',
      '#EXT-X-DISCONTINUITY-SEQUENCE:3',
      '#EXT-X-MAP:URI="init.mp4"',
      `#EXT-X-PROGRAM-DATE-TIME:${new Date(AST + 10_000).toISOString()}`,
      '#EXTINF:2.000,',
      '100000000.m4s',
      '#EXT-X-GAP',
      '#EXTINF:2.000,',
      '120000000.m4s',
      '#EXT-X-DISCONTINUITY',
      `#EXT-X-PROGRAM-DATE-TIME:${new Date(AST + 14_000).toISOString()}`,
      '#EXTINF:2.000,',
      '140000000.m4s',
    ]);
  });
});

describe('readMarkerSample', () => {
  it('reads Azure\'s sample: version, id, presentation_time_delta, then the section', () => {
    const s = section(3);
    expect(readMarkerSample(scte35Sample(3, 450, s))).toEqual({ id: 3, delta: 450, section: s });
  });

  it('reads a bare splice_info_section, and cuts what follows the section', () => {
    const s = section(4);
    expect(readMarkerSample(Buffer.concat([s, Buffer.from([0, 0])]))).toEqual({ id: undefined, delta: 0, section: s });
  });

  it('refuses what holds no splice_info_section', () => {
    const s = section(5);
    for (const bad of [Buffer.alloc(0), Buffer.alloc(20), scte35Sample(1, 0, Buffer.from('not a section')), scte35Sample(1, 0, s.subarray(0, s.length - 4)), s.subarray(0, 10)]) {
      expect(readMarkerSample(bad)).toBeUndefined();
    }
  });
});
