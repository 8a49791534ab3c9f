import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { renderMpd } from '../../../lib/manifest/dash';
import { TIME_URL_PLACEHOLDER, type OutputSnapshot } from '../../../lib/manifest/output';
import type { FragmentTime } from '../../../lib/model';
import { AST, TS, V0, aacRun, group, info, rep, run, outputSnapshot } from '../../helpers/output';

type Attrs = Record<string, string>;
type S = Attrs;
type Representation = Attrs & { AudioChannelConfiguration?: Attrs[] };
type AdaptationSet = Attrs & {
  AudioChannelConfiguration?: Attrs[];
  SegmentTemplate: Attrs & { SegmentTimeline: { S: S[] } };
  Representation: Representation[];
};
interface Doc {
  MPD: Attrs & { Period: Array<Attrs & { AdaptationSet?: AdaptationSet[] }>; UTCTiming?: Attrs[] };
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => ['Period', 'AdaptationSet', 'Representation', 'S', 'AudioChannelConfiguration', 'UTCTiming'].includes(name),
});

function read(text: string): Doc {
  expect(XMLValidator.validate(text)).toBe(true);
  return xml.parse(text) as Doc;
}

function sets(text: string): AdaptationSet[] {
  const doc = read(text);
  expect(doc.MPD.Period).toHaveLength(1);
  return doc.MPD.Period[0]!.AdaptationSet ?? [];
}

/** The segments a SegmentTimeline describes, `r` runs expanded. */
function expand(ss: S[]): FragmentTime[] {
  const out: FragmentTime[] = [];
  let next = 0n;
  for (const s of ss) {
    let time = s.t !== undefined ? BigInt(s.t) : next;
    const duration = BigInt(s.d!);
    for (let i = 0; i <= Number(s.r ?? '0'); i++) {
      out.push({ time, duration });
      time += duration;
    }
    next = time;
  }
  return out;
}

/** Seconds of an `xs:duration` of the form `PT<seconds>S`. */
function seconds(d: string | undefined): number {
  const m = /^PT(\d+(?:\.\d{1,3})?)S$/.exec(d ?? '');
  if (!m) throw new Error(`not a PT…S duration: ${d}`);
  return Number(m[1]);
}

const VIDEO = [
  rep(info('video', 350_000, { maxWidth: 640, maxHeight: 360, displayWidth: 640, displayHeight: 360 }), 'avc1.42c01e', 25),
  rep(info('video', 1_000_000, { maxWidth: 960, maxHeight: 540, displayWidth: 960, displayHeight: 540 }), 'avc1.4d401f', 25),
  rep(info('video', 2_500_000), 'avc1.64001f', 25),
];
const AUDIO = [rep(info('audio', 128_000), 'mp4a.40.2')];

function snapshot(over: Partial<OutputSnapshot> = {}): OutputSnapshot {
  return outputSnapshot([group(VIDEO, run(V0, 20_000_000n, 10)), group(AUDIO, aacRun(V0, 10))], over);
}

describe('renderMpd', () => {
  describe('a live point', () => {
    const text = renderMpd(snapshot());
    const doc = read(text);
    const mpd = doc.MPD;

    it('is a dynamic MPD of the live and CMAF profiles, anchored at availabilityStart', () => {
      expect(text.startsWith('<?xml version="1.0" encoding="utf-8"?>\n<MPD ')).toBe(true);
      expect(mpd.xmlns).toBe('urn:mpeg:dash:schema:mpd:2011');
      expect(mpd.profiles).toBe('urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019');
      expect(mpd.type).toBe('dynamic');
      expect(mpd.availabilityStartTime).toBe('2025-06-17T08:00:00.000Z');
      expect(mpd.publishTime).toBe(new Date(AST + 12_345_700_000).toISOString());
      expect(mpd.mediaPresentationDuration).toBeUndefined();
    });

    it('derives the timing attributes from the longest listed segment, rounded up to the millisecond', () => {
      // The longest is the 20 053 333-tick audio segment: 2.0053333 s.
      expect(mpd.minimumUpdatePeriod).toBe('PT2.006S');
      expect(mpd.maxSegmentDuration).toBe('PT2.006S');
      expect(mpd.minBufferTime).toBe('PT4.012S');
      expect(mpd.suggestedPresentationDelay).toBe('PT8.024S'); // (lookahead 2 + 2) segments
      // Without a window: the span of the listing, 10 × 2 s.
      expect(mpd.timeShiftBufferDepth).toBe('PT20S');
      expect(seconds(mpd.timeShiftBufferDepth) - seconds(mpd.suggestedPresentationDelay)).toBeGreaterThan(0);
    });

    it('ends with UTCTiming after the Period, carrying the placeholder for the edge to replace', () => {
      expect(mpd.UTCTiming).toEqual([{ schemeIdUri: 'urn:mpeg:dash:utc:http-iso:2014', value: TIME_URL_PLACEHOLDER }]);
      expect(text.indexOf('<UTCTiming')).toBeGreaterThan(text.indexOf('</Period>'));
      expect(mpd.Period[0]).toMatchObject({ id: '0', start: 'PT0S' });
    });

    it('writes one AdaptationSet per group with a $Time$ template', () => {
      const [video, audio] = sets(text);
      expect(video).toMatchObject({
        id: '0', contentType: 'video', mimeType: 'video/mp4', segmentAlignment: 'true', startWithSAP: '1',
        maxWidth: '1280', maxHeight: '720', par: '16:9',
      });
      expect(video!.lang).toBeUndefined();
      expect(audio).toMatchObject({ id: '1', contentType: 'audio', mimeType: 'audio/mp4', lang: 'en', segmentAlignment: 'true', startWithSAP: '1' });
      expect(audio!.AudioChannelConfiguration).toEqual([
        { schemeIdUri: 'urn:mpeg:dash:23003:3:audio_channel_configuration:2011', value: '2' },
      ]);
      for (const set of [video!, audio!]) {
        expect(set.SegmentTemplate).toMatchObject({
          timescale: String(TS),
          initialization: 'cmaf/$RepresentationID$/init.mp4',
          media: 'cmaf/$RepresentationID$/$Time$.m4s',
        });
        expect(set.SegmentTemplate.presentationTimeOffset).toBe('0');
      }
    });

    it('describes every Representation', () => {
      const [video, audio] = sets(text);
      expect(video!.Representation).toEqual([
        { id: 'video=350000', bandwidth: '350000', codecs: 'avc1.42c01e', width: '640', height: '360', frameRate: '25' },
        { id: 'video=1000000', bandwidth: '1000000', codecs: 'avc1.4d401f', width: '960', height: '540', frameRate: '25' },
        { id: 'video=2500000', bandwidth: '2500000', codecs: 'avc1.64001f', width: '1280', height: '720', frameRate: '25' },
      ]);
      expect(audio!.Representation).toEqual([{ id: 'audio=128000', bandwidth: '128000', codecs: 'mp4a.40.2', audioSamplingRate: '48000' }]);
    });

    it('runs equal contiguous segments into one S, with t on the first only', () => {
      expect(text).toContain(`<S t="${V0}" d="20000000" r="9"/>`);
      const audio = sets(text)[1]!.SegmentTemplate.SegmentTimeline.S;
      expect(audio).toHaveLength(10); // alternating durations: no runs
      expect(audio[0]).toEqual({ t: String(V0), d: '20053333' });
      for (const s of audio.slice(1)) {
        expect(s.t).toBeUndefined();
        expect(s.r).toBeUndefined();
      }
    });

    it('lists exactly the snapshot segments: each $Time$ is a listed start', () => {
      const s = snapshot();
      sets(text).forEach((set, i) => expect(expand(set.SegmentTemplate.SegmentTimeline.S)).toEqual(s.groups[i]!.segments));
    });
  });

  it('writes t after a gap and does not run across it, exact above 2^53', () => {
    const big = 2n ** 60n + 1n; // a Number would round this
    const d = 20_000_000n;
    const segments = [...run(big, d, 3), ...run(big + 4n * d, d, 2), { time: big + 6n * d, duration: 10_000_000n }, ...run(big + 7n * d, d, 1)];
    const text = renderMpd(snapshot({ groups: [group(VIDEO, segments)] }));
    const ss = sets(text)[0]!.SegmentTemplate.SegmentTimeline.S;
    expect(ss).toEqual([
      { t: String(big), d: '20000000', r: '2' },
      { t: String(big + 4n * d), d: '20000000', r: '1' },
      { d: '10000000' },
      // A shorter segment before it: the next one starts a full d after its start, which is a gap.
      { t: String(big + 7n * d), d: '20000000' },
    ]);
    expect(expand(ss)).toEqual(segments);
    expect(text).toContain(`t="${big}"`);
  });

  it('writes t after an overlap too', () => {
    const segments = [{ time: 100n, duration: 20n }, { time: 110n, duration: 20n }, { time: 130n, duration: 20n }];
    const ss = sets(renderMpd(snapshot({ groups: [group(VIDEO, segments)] })))[0]!.SegmentTemplate.SegmentTimeline.S;
    expect(ss).toEqual([{ t: '100', d: '20' }, { t: '110', d: '20', r: '1' }]);
  });

  describe('timeShiftBufferDepth', () => {
    it('is the window when there is one', () => {
      const mpd = read(renderMpd(snapshot({ window: 30 }))).MPD;
      expect(mpd.timeShiftBufferDepth).toBe('PT30S');
    });

    it('stays longer than suggestedPresentationDelay by at least one segment', () => {
      for (const s of [
        snapshot({ window: 4 }),
        snapshot({ groups: [group(VIDEO, run(V0, 20_000_000n, 1))] }),
        snapshot({ lookahead: 5, groups: [group(VIDEO, run(V0, 20_000_000n, 3))] }),
        snapshot({ groups: [] }),
      ]) {
        const mpd = read(renderMpd(s)).MPD;
        const spd = seconds(mpd.suggestedPresentationDelay);
        expect(seconds(mpd.timeShiftBufferDepth) - spd).toBeGreaterThanOrEqual(seconds(mpd.maxSegmentDuration));
      }
      const mpd = read(renderMpd(snapshot({ window: 4 }))).MPD;
      expect(mpd.timeShiftBufferDepth).toBe('PT10.03S'); // SPD 8.024 + 2.006
    });

    it('spans all groups from the first start to the newest end', () => {
      const groups = [group(VIDEO, run(V0 + 40_000_000n, 20_000_000n, 7)), group(AUDIO, aacRun(V0, 8))];
      expect(read(renderMpd(snapshot({ groups }))).MPD.timeShiftBufferDepth).toBe('PT18S'); // V0 … V0 + 18 s
    });
  });

  it('skips groups with nothing listed and keeps the others ids', () => {
    const text = renderMpd(snapshot({ groups: [group(VIDEO, []), group(AUDIO, aacRun(V0, 2))] }));
    const all = sets(text);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ id: '1', contentType: 'audio' });
  });

  it('renders an empty point without AdaptationSets and with a non-zero update period', () => {
    const mpd = read(renderMpd(snapshot({ groups: [] }))).MPD;
    expect(mpd.Period[0]!.AdaptationSet).toBeUndefined();
    expect(seconds(mpd.minimumUpdatePeriod)).toBeGreaterThan(0);
  });

  describe('an ended point', () => {
    const A48 = [rep(info('audio', 96_000, { timescale: 48_000 }), 'mp4a.40.2')];
    // Audio starts one AAC priming frame (1024 samples) before video, on its own 48 kHz timescale.
    const videoStart = 12_345_678n * 10_000_000n;
    const audioStart = 12_345_678n * 48_000n - 1024n;
    const s = snapshot({
      ended: true,
      groups: [group(VIDEO, run(videoStart, 20_000_000n, 5)), group(A48, run(audioStart, 96_256n, 5))],
    });
    const text = renderMpd(s);
    const mpd = read(text).MPD;

    it('is a static MPD without the live attributes', () => {
      expect(mpd.type).toBe('static');
      for (const a of ['availabilityStartTime', 'publishTime', 'minimumUpdatePeriod', 'timeShiftBufferDepth', 'suggestedPresentationDelay']) {
        expect(mpd[a]).toBeUndefined();
      }
      expect(mpd.UTCTiming).toBeUndefined();
      expect(text).not.toContain('UTCTiming');
      expect(mpd.minBufferTime).toBe('PT4.012S'); // 96 256 / 48 000 = 2.0053 s, rounded up
    });

    it('starts at 0: presentationTimeOffset is the earliest start, converted exactly into each timescale', () => {
      const [video, audio] = sets(text);
      // The earliest instant is audio's, 1024/48000 s before video's first start: 213 333.33 ticks at 10 MHz.
      expect(audio!.SegmentTemplate.presentationTimeOffset).toBe(String(audioStart));
      expect(video!.SegmentTemplate.presentationTimeOffset).toBe(String(videoStart - 213_334n));
      // $Time$ keeps the listed starts.
      expect(expand(video!.SegmentTemplate.SegmentTimeline.S)).toEqual(s.groups[0]!.segments);
      expect(expand(audio!.SegmentTemplate.SegmentTimeline.S)).toEqual(s.groups[1]!.segments);
    });

    it('lasts from the earliest start to the latest end', () => {
      // Audio: 1024 samples early, 5 × 96 256 samples long, ends 10.0053 s after video starts; video ends at 10 s.
      // From audio's start: (5 × 96 256) / 48 000 = 10.02667 s, rounded up to the millisecond.
      expect(mpd.mediaPresentationDuration).toBe('PT10.027S');
    });
  });

  it('writes frame rates as the FrameRateType allows: integers or fractions', () => {
    const fr = (frameRate: number | undefined): string | undefined => {
      const r = rep(info('video', 1_000_000), 'avc1.64001f', frameRate);
      return sets(renderMpd(snapshot({ groups: [group([r], run(V0, 20_000_000n, 2))] })))[0]!.Representation[0]!.frameRate;
    };
    expect(fr(25)).toBe('25');
    expect(fr(50.0004)).toBe('50');
    expect(fr(29.97)).toBe('30000/1001');
    expect(fr(30000 / 1001)).toBe('30000/1001');
    expect(fr(59.94)).toBe('60000/1001');
    expect(fr(23.976)).toBe('24000/1001');
    expect(fr(12.5)).toBe('25/2');
    expect(fr(undefined)).toBeUndefined();
    expect(fr(0)).toBeUndefined();
  });

  it('gives each Representation its own channel configuration when the set mixes them', () => {
    const reps = [rep(info('audio', 96_000, { channels: 2 }), 'mp4a.40.2'), rep(info('audio', 384_000, { channels: 6 }), 'ec-3')];
    const set = sets(renderMpd(snapshot({ groups: [group(reps, aacRun(V0, 2))] })))[0]!;
    expect(set.AudioChannelConfiguration).toBeUndefined();
    expect(set.Representation.map((r) => r.AudioChannelConfiguration?.[0]?.value)).toEqual(['2', '6']);
  });

  it('escapes what encoders supplied and writes representation ids in their URL form', () => {
    const odd = info('audio', 64_000, { language: 'en"<&>', customAttributes: [['lang', 'en'], ['role', 'main']] });
    const text = renderMpd(snapshot({ groups: [group([rep(odd, undefined)], aacRun(V0, 2))] }));
    const set = sets(text)[0]!;
    expect(set.lang).toBe('en"<&>');
    expect(text).toContain('lang="en&quot;&lt;&amp;&gt;"');
    expect(set.Representation[0]).toEqual({ id: 'audio=64000%2Clang=en%2Crole=main', bandwidth: '64000', audioSamplingRate: '48000' });
  });

  it('is a pure function of the snapshot', () => {
    expect(renderMpd(snapshot())).toBe(renderMpd(snapshot()));
  });
});

describe('the live presentation starts at the session start', () => {
  it('presentationTimeOffset is liveStart in each timescale and availabilityStartTime moves with it', () => {
    const start = V0 / BigInt(TS);
    const s = snapshot({
      liveStart: start,
      groups: [group(VIDEO, run(V0, 20_000_000n, 5)), group([rep(info('audio', 128_000, { timescale: 48_000 }), 'mp4a.40.2')], run(start * 48_000n, 96_000n, 5))],
    });
    const text = renderMpd(s);
    expect(text).toContain(`availabilityStartTime="${new Date(AST + Number(start) * 1000).toISOString()}"`);
    const offsets = [...text.matchAll(/presentationTimeOffset="(\d+)"/g)].map((m) => BigInt(m[1]!));
    expect(offsets).toEqual([start * BigInt(TS), start * 48_000n]);
  });
});
