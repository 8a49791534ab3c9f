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
});
