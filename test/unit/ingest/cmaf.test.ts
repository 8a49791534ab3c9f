/**
 * CMAF ingest through the Smooth parser's CMAF mode (DASH-IF live media ingest, one track per POST):
 * the track is described from its one-track `moov` (bitrate from `btrt`) and named after the stream;
 * fragments are timed by `tfdt`; `styp` with `lmsg` ends the track after its fragment, as an `mfra`
 * does; any split of the input gives the same events; what it cannot describe is refused clearly.
 */
import type { SmoothError } from '../../../lib/errors';
import { CMAF_STREAM, SmoothIngestParser, cmafIngest, cmafTrackName } from '../../../lib/ingest/smooth';
import type { IngestEvent } from '../../../lib/ingest/types';
import { PPS, SPS, avcC, box, cat, fragment, ftyp, moov, payload, str, u32, visualEntry } from '../../helpers/fmp4';

const btrt = (avg: number): Buffer => box('btrt', u32(0), u32(avg), u32(avg));
const entry = (bitrate: number): Buffer => visualEntry('avc1', 320, 180, avcC([SPS], [PPS]), btrt(bitrate));
const header = (o: { bitrate?: number; tracks?: number } = {}): Buffer =>
  cat(
    ftyp('cmfc', 0, ['iso6', 'cmfc']),
    moov(Array.from({ length: o.tracks ?? 1 }, (_, i) => ({ trackId: i + 1, kind: 'video' as const, timescale: 12800, entry: entry(o.bitrate ?? 300_000) }))),
  );
const frag = (i: number): Buffer =>
  fragment(i + 1, [{ trackId: 1, time: 0, decodeTime: i * 25_600, duration: 25_600, samples: [payload(900, i), payload(300, i + 50)], noTfxd: true }], { defaultBaseIsMoof: true });
const styp = (...brands: string[]): Buffer => box('styp', str('msdh'), u32(0), ...brands.map(str));

function run(input: Buffer, splits: number[], name = 'video'): IngestEvent[] {
  const p = new SmoothIngestParser({ maxBoxSize: 1 << 20, cmaf: name });
  const out: IngestEvent[] = [];
  let at = 0;
  for (const cut of [...splits, input.length]) {
    out.push(...p.push(input.subarray(at, cut)));
    at = cut;
  }
  out.push(...p.end());
  return out;
}

/** Events with the parser's views reduced to comparable values. */
function summary(events: IngestEvent[]): unknown[] {
  return events.map((e) => {
    if (e.type === 'header') return { type: 'header', tracks: e.tracks.map((t) => ({ key: t.key, info: t.info, trackId: t.trackId })) };
    if (e.type === 'fragment') return { type: 'fragment', time: e.fragment.time, duration: e.fragment.duration, samples: e.fragment.samples.count };
    return e;
  });
}

describe('CMAF ingest', () => {
  it('names the track after the stream, up to its first -, for video, audio, text and metadata streams', () => {
    expect(['video-800k.cmfv', 'video.cmfv', 'audio_en-96k.cmfa', 'subs.cmft', 'scte.cmfm', 'ch1', 'video.ismv', '-x.cmfv', 'v.CMFV'].map(cmafTrackName)).toEqual([
      'video', 'video', 'audio_en', 'subs', 'scte', undefined, undefined, undefined, 'v',
    ]);
    expect(CMAF_STREAM.test('a'.repeat(65) + '.cmfv')).toBe(false);
    expect(() => cmafIngest('ch1')).toThrow(/not a CMAF stream name/);
  });

  it('describes the track from its moov and times fragments by tfdt; an mfra ends it', () => {
    const input = cat(header(), frag(0), frag(1), frag(2), box('mfra'));
    const events = summary(run(input, []));
    expect(events[0]).toEqual({
      type: 'header',
      tracks: [{ key: 'video/video/300000', trackId: 1, info: expect.objectContaining({ type: 'video', name: 'video', bitrate: 300_000, fourCC: 'H264', timescale: 12800, maxWidth: 320, maxHeight: 180 }) }],
    });
    expect(events.slice(1)).toEqual([
      { type: 'fragment', time: 0n, duration: 25_600n, samples: 2 },
      { type: 'fragment', time: 25_600n, duration: 25_600n, samples: 2 },
      { type: 'fragment', time: 51_200n, duration: 25_600n, samples: 2 },
      { type: 'end' },
    ]);
  });

  it('gives the same events for any split of the input', () => {
    const input = cat(header(), styp('cmfs'), frag(0), frag(1), styp('cmfs', 'lmsg'), frag(2));
    const whole = summary(run(input, []));
    for (let cut = 1; cut < input.length; cut += 7) expect(summary(run(input, [cut]))).toEqual(whole);
    expect(summary(run(input, Array.from({ length: input.length - 1 }, (_, i) => i + 1)))).toEqual(whole);
  });

  it('ends the track after the fragment whose styp lists lmsg; a box after that is refused', () => {
    const events = summary(run(cat(header(), styp('cmfs'), frag(0), styp('cmfs', 'lmsg'), frag(1)), []));
    expect(events.map((e) => (e as { type: string }).type)).toEqual(['header', 'fragment', 'fragment', 'end']);
    expect(() => run(cat(header(), styp('lmsg'), frag(0), frag(1)), [])).toThrow(/after the end-of-stream/);
  });

  it('refuses a moov of two tracks, and a track without a bitrate, with the reason', () => {
    expect(() => run(header({ tracks: 2 }), [])).toThrow(/carries one track; this moov has 2/);
    let err: SmoothError | undefined;
    try {
      run(cat(ftyp('cmfc', 0, ['cmfc']), moov([{ trackId: 1, kind: 'video', timescale: 12800, entry: visualEntry('avc1', 320, 180, avcC([SPS], [PPS])) }])), []);
    } catch (e) {
      err = e as SmoothError;
    }
    expect([err?.code, err?.message]).toEqual(['ERR_BAD_HEADER', expect.stringMatching(/needs a btrt box/)]);
  });

  it('a Smooth parser without cmaf still requires the Live Server Manifest box', () => {
    const p = new SmoothIngestParser({ maxBoxSize: 1 << 20 });
    expect(() => p.push(header())).toThrow(/moov arrived before the Live Server Manifest box/);
  });

  describe('a TTML text track (.cmft)', () => {
    const zero = (n: number): Buffer => Buffer.alloc(n);
    const stpp = box('stpp', zero(6), Buffer.from([0, 1]), Buffer.from('http://www.w3.org/ns/ttml\0\0\0'));
    const textHeader = (entry = stpp): Buffer =>
      cat(ftyp('cmfc', 0, ['iso6', 'cmfc']), moov([{ trackId: 1, kind: 'text', handler: 'subt', timescale: 1000, language: 'eng', entry }]));
    // CMAF times a document on the track's timeline: the sample at 20 s says 00:00:20.
    const doc = (from: number): Buffer =>
      Buffer.from(`<tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="00:00:${from}.000" end="00:00:${from + 2}.000">at ${from}</p></div></body></tt>`);
    const textFrag = (i: number): Buffer =>
      fragment(i + 1, [{ trackId: 1, time: 0, decodeTime: 20_000 + i * 2000, duration: 2000, samples: [doc(20 + i * 2)], noTfxd: true }], { defaultBaseIsMoof: true });

    it('is a TTML text StreamIndex whose documents are timed from their own sample, as Smooth keeps them, whatever the split', () => {
      const input = cat(textHeader(), textFrag(0), textFrag(1), box('mfra'));
      const events = run(input, [], 'subs');
      const h = events[0];
      if (h?.type !== 'header') throw new Error('no header');
      expect(h.tracks[0]!.info).toMatchObject({ type: 'text', name: 'subs', bitrate: 0, fourCC: 'TTML', subtype: 'SUBT', timescale: 1000 });
      const texts = events.flatMap((e) => (e.type === 'fragment' ? [Buffer.concat(e.fragment.data).toString()] : []));
      expect(texts).toEqual([0, 1].map((i) => `<tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="00:00:00.000" end="00:00:02.000">at ${20 + i * 2}</p></div></body></tt>`));
      const sizes = events.flatMap((e) => (e.type === 'fragment' ? [e.fragment.samples.size(0)] : []));
      expect(sizes).toEqual(texts.map((t) => t.length));
      for (const cut of [1, 50, input.length - 10]) expect(summary(run(input, [cut], 'subs'))).toEqual(summary(events));
      expect(run(cat(textHeader(), textFrag(0)), [], 'captions')[0]).toMatchObject({ tracks: [{ info: { subtype: 'CAPT' } }] });
    });

    it('refuses WebVTT, which a Smooth manifest cannot describe', () => {
      expect(() => run(textHeader(box('wvtt', zero(6), Buffer.from([0, 1]))), [], 'subs')).toThrow(/only TTML \(stpp\)/);
    });
  });
});

