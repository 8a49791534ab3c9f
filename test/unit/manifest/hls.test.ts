import { encodeRepresentationId, renderMaster, renderMedia } from '../../../lib/manifest/hls';
import type { OutputSnapshot } from '../../../lib/manifest/output';
import { AST, V0, aacRun, group, info, rep, run, outputSnapshot } from '../../helpers/output';

const VIDEO = [
  rep(info('video', 350_000, { maxWidth: 640, maxHeight: 360 }), 'avc1.42c01e', 25),
  rep(info('video', 1_000_000, { maxWidth: 960, maxHeight: 540 }), 'avc1.4d401f', 25),
  rep(info('video', 2_500_000), 'avc1.64001f', 30000 / 1001),
];
const AUDIO = [rep(info('audio', 128_000), 'mp4a.40.2')];

function snapshot(over: Partial<OutputSnapshot> = {}): OutputSnapshot {
  return outputSnapshot([group(VIDEO, run(V0, 20_000_000n, 10)), group(AUDIO, aacRun(V0, 10), { mediaSequence: 7 })], over);
}

const lines = (text: string): string[] => text.trimEnd().split('\n');
const tags = (text: string, tag: string): string[] => lines(text).filter((l) => l.startsWith(`${tag}:`)).map((l) => l.slice(tag.length + 1));

/** An attribute list as a map; quoted-string values keep their quotes. */
function attributes(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of list.matchAll(/([A-Z0-9-]+)=("[^"\r\n]*"|[^,]*)(?:,|$)/g)) out[m[1]!] = m[2]!;
  // Every character of the list belongs to one pair: nothing is left for a naive parser to trip over.
  expect([...list.matchAll(/([A-Z0-9-]+)=("[^"\r\n]*"|[^,]*)(?:,|$)/g)].map((m) => m[0]).join('')).toBe(list);
  return out;
}

describe('renderMaster', () => {
  const text = renderMaster(snapshot());

  it('starts with the version 7 header and INDEPENDENT-SEGMENTS', () => {
    expect(lines(text).slice(0, 3)).toEqual(['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS']);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('lists the audio as a rendition of the "audio" group', () => {
    const media = tags(text, '#EXT-X-MEDIA');
    expect(media).toHaveLength(1);
    expect(media[0]).toBe(
      'TYPE=AUDIO,GROUP-ID="audio",NAME="audio",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="cmaf/audio=128000/index.m3u8"',
    );
  });

  it('lists one variant per video representation, with audio added to the bandwidth', () => {
    const all = lines(text);
    const variants = all.flatMap((l, i) => (l.startsWith('#EXT-X-STREAM-INF:') ? [{ a: attributes(l.slice(18)), uri: all[i + 1] }] : []));
    expect(variants).toEqual([
      {
        a: { BANDWIDTH: '478000', 'AVERAGE-BANDWIDTH': '478000', CODECS: '"avc1.42c01e,mp4a.40.2"', RESOLUTION: '640x360', 'FRAME-RATE': '25.000', AUDIO: '"audio"' },
        uri: 'cmaf/video=350000/index.m3u8',
      },
      {
        a: { BANDWIDTH: '1128000', 'AVERAGE-BANDWIDTH': '1128000', CODECS: '"avc1.4d401f,mp4a.40.2"', RESOLUTION: '960x540', 'FRAME-RATE': '25.000', AUDIO: '"audio"' },
        uri: 'cmaf/video=1000000/index.m3u8',
      },
      {
        a: { BANDWIDTH: '2628000', 'AVERAGE-BANDWIDTH': '2628000', CODECS: '"avc1.64001f,mp4a.40.2"', RESOLUTION: '1280x720', 'FRAME-RATE': '29.970', AUDIO: '"audio"' },
        uri: 'cmaf/video=2500000/index.m3u8',
      },
    ]);
  });

  it('gives every audio representation a rendition with a unique NAME, the first one DEFAULT, and counts the highest', () => {
    const reps = [rep(info('audio', 64_000), 'mp4a.40.5'), rep(info('audio', 192_000, { channels: 6 }), 'mp4a.40.2')];
    const other = rep(info('audio', 96_000, { name: 'commentary', language: 'de', channels: undefined }), 'mp4a.40.2');
    const s = snapshot({ groups: [group(VIDEO.slice(0, 1), run(V0, 20_000_000n, 2)), group(reps, aacRun(V0, 2)), group([other], aacRun(V0, 2))] });
    const out = renderMaster(s);
    const media = tags(out, '#EXT-X-MEDIA').map(attributes);
    expect(media.map((m) => [m.NAME, m.LANGUAGE, m.DEFAULT, m.CHANNELS, m.URI])).toEqual([
      ['"audio 64 kbps"', '"en"', 'YES', '"2"', '"cmaf/audio=64000/index.m3u8"'],
      ['"audio 192 kbps"', '"en"', 'NO', '"6"', '"cmaf/audio=192000/index.m3u8"'],
      ['"commentary"', '"de"', 'NO', undefined, '"cmaf/commentary=96000/index.m3u8"'],
    ]);
    for (const m of media) expect(m).toMatchObject({ TYPE: 'AUDIO', 'GROUP-ID': '"audio"', AUTOSELECT: 'YES' });
    const variant = attributes(tags(out, '#EXT-X-STREAM-INF')[0]!);
    expect(variant.BANDWIDTH).toBe(String(350_000 + 192_000));
    // Every audio codec a variant can play, once.
    expect(variant.CODECS).toBe('"avc1.42c01e,mp4a.40.5,mp4a.40.2"');
  });

  it('without video, makes each audio representation a variant of its own', () => {
    const reps = [rep(info('audio', 64_000), 'mp4a.40.5'), rep(info('audio', 128_000), 'mp4a.40.2')];
    const out = renderMaster(snapshot({ groups: [group(VIDEO, []), group(reps, aacRun(V0, 2))] }));
    expect(tags(out, '#EXT-X-MEDIA')).toEqual([]);
    expect(lines(out).slice(3)).toEqual([
      '#EXT-X-STREAM-INF:BANDWIDTH=64000,AVERAGE-BANDWIDTH=64000,CODECS="mp4a.40.5"',
      'cmaf/audio=64000/index.m3u8',
      '#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"',
      'cmaf/audio=128000/index.m3u8',
    ]);
  });

  it('leaves out what is unknown, and AUDIO when there is no audio', () => {
    const bare = rep(info('video', 500_000, { maxWidth: undefined, maxHeight: undefined }), undefined);
    const out = renderMaster(snapshot({ groups: [group([bare], run(V0, 20_000_000n, 2))] }));
    expect(lines(out).slice(3)).toEqual(['#EXT-X-STREAM-INF:BANDWIDTH=500000,AVERAGE-BANDWIDTH=500000', 'cmaf/video=500000/index.m3u8']);
    // A known video codec with an unknown audio one: no partial CODECS.
    const mixed = renderMaster(snapshot({ groups: [group(VIDEO.slice(0, 1), run(V0, 20_000_000n, 2)), group([rep(info('audio', 1), undefined)], aacRun(V0, 2))] }));
    expect(attributes(tags(mixed, '#EXT-X-STREAM-INF')[0]!).CODECS).toBeUndefined();
  });

  it('keeps encoder-supplied names from breaking out of their quoted-string', () => {
    const named = group(AUDIO, aacRun(V0, 2), { name: 'Main "mix"\r\nfor,all', language: 'en"x' });
    const out = renderMaster(snapshot({ groups: [group(VIDEO.slice(0, 1), run(V0, 20_000_000n, 2)), named] }));
    const media = tags(out, '#EXT-X-MEDIA');
    expect(media).toHaveLength(1);
    const a = attributes(media[0]!);
    expect(a.NAME).toBe(`"Main 'mix'for,all"`);
    expect(a.LANGUAGE).toBe(`"en'x"`);
    expect(a.URI).toBe('"cmaf/audio=128000/index.m3u8"');
    expect(lines(out)).toHaveLength(6);
  });

  it('percent-encodes the commas of representation ids in URIs and keeps "="', () => {
    const custom = rep(info('video', 800_000, { customAttributes: [['cam', 'left'], ['hdr', 'pq:1']] }), 'avc1.64001f');
    expect(custom.id).toBe('video=800000,cam=left,hdr=pq:1');
    expect(encodeRepresentationId(custom.id)).toBe('video=800000%2Ccam=left%2Chdr=pq:1');
    const out = renderMaster(snapshot({ groups: [group([custom], run(V0, 20_000_000n, 2))] }));
    expect(lines(out).at(-1)).toBe('cmaf/video=800000%2Ccam=left%2Chdr=pq:1/index.m3u8');
  });

  it('leaves out groups with nothing listed', () => {
    const out = renderMaster(snapshot({ groups: [group(VIDEO, run(V0, 20_000_000n, 2)), group(AUDIO, [])] }));
    expect(tags(out, '#EXT-X-MEDIA')).toEqual([]);
    expect(tags(out, '#EXT-X-STREAM-INF').every((l) => !l.includes('AUDIO='))).toBe(true);
  });
});

describe('encodeRepresentationId', () => {
  it('encodes what a path segment cannot hold and never throws', () => {
    expect(encodeRepresentationId('a b/c?d#e%"')).toBe('a%20b%2Fc%3Fd%23e%25%22');
    expect(encodeRepresentationId('x\ud800')).toBe('x%EF%BF%BD');
  });
});

describe('renderMedia', () => {
  const s = snapshot();
  const audio = s.groups[1]!;
  const text = renderMedia(s, audio);

  it('writes the header tags', () => {
    expect(lines(text).slice(0, 7)).toEqual([
      '#EXTM3U',
      '#EXT-X-VERSION:7',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:7',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-MAP:URI="init.mp4"',
      `#EXT-X-PROGRAM-DATE-TIME:${new Date(AST + 12_345_678_000).toISOString()}`,
    ]);
    expect(text).not.toContain('#EXT-X-PLAYLIST-TYPE');
    expect(text).not.toContain('#EXT-X-INDEPENDENT-SEGMENTS');
    expect(text).not.toContain('#EXT-X-ENDLIST');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('lists every segment by its start time, with durations to the millisecond', () => {
    const all = lines(text);
    const entries = all.flatMap((l, i) => (l.startsWith('#EXTINF:') ? [[l, all[i + 1]]] : []));
    expect(entries).toEqual(audio.segments.map((f, i) => [i % 2 === 0 ? '#EXTINF:2.005,' : '#EXTINF:1.995,', `${f.time}.m4s`]));
    for (const d of tags(text, '#EXTINF')) expect(Math.round(Number.parseFloat(d))).toBeLessThanOrEqual(audio.targetDuration);
  });

  it('marks discontinuities and restarts the program date-time after each', () => {
    const d = 20_000_000n;
    // A gap of 1.5 s, then one of 10 s: the date-time after each is the segment's own start.
    const segments = [...run(V0, d, 2), ...run(V0 + 5n * d + 15_000_000n, d, 2), { time: V0 + 100n * d + 1234n, duration: 19_999_999n }];
    const g = group(VIDEO, segments, { discontinuities: new Set([2, 4]), discontinuitySequence: 3, mediaSequence: 41 });
    const out = renderMedia(snapshot({ groups: [g] }), g);
    const body = lines(out).slice(6);
    const at = (ms: number): string => new Date(AST + ms).toISOString();
    expect(body).toEqual([
      `#EXT-X-PROGRAM-DATE-TIME:${at(12_345_678_000)}`,
      '#EXTINF:2.000,', `${V0}.m4s`,
      '#EXTINF:2.000,', `${V0 + d}.m4s`,
      '#EXT-X-DISCONTINUITY',
      `#EXT-X-PROGRAM-DATE-TIME:${at(12_345_689_500)}`,
      '#EXTINF:2.000,', `${V0 + 5n * d + 15_000_000n}.m4s`,
      '#EXTINF:2.000,', `${V0 + 6n * d + 15_000_000n}.m4s`,
      '#EXT-X-DISCONTINUITY',
      // 1234 ticks = 0.1234 ms: rounded to the nearest millisecond.
      `#EXT-X-PROGRAM-DATE-TIME:${at(12_345_878_000)}`,
      '#EXTINF:2.000,', `${V0 + 100n * d + 1234n}.m4s`,
    ]);
    expect(lines(out)[4]).toBe('#EXT-X-DISCONTINUITY-SEQUENCE:3');
    expect(lines(out)[3]).toBe('#EXT-X-MEDIA-SEQUENCE:41');
  });

  it('rounds program date-times to the nearest millisecond', () => {
    const g = group(AUDIO, [{ time: 6_000n, duration: 20_000_000n }]); // 0.6 ms after the anchor
    expect(tags(renderMedia(snapshot({ groups: [g] }), g), '#EXT-X-PROGRAM-DATE-TIME')).toEqual([new Date(AST + 1).toISOString()]);
  });

  it('ends with ENDLIST only when the point has ended', () => {
    const ended = snapshot({ ended: true });
    const out = renderMedia(ended, ended.groups[0]!);
    expect(lines(out).at(-1)).toBe('#EXT-X-ENDLIST');
    expect(out.match(/#EXT-X-ENDLIST/g)).toHaveLength(1);
    expect(out).not.toContain('#EXT-X-PLAYLIST-TYPE');
  });

  it('lists nothing but the header for a group without segments', () => {
    const g = group(VIDEO, []);
    expect(lines(renderMedia(snapshot({ groups: [g] }), g))).toHaveLength(6);
  });
});
