import { parseRoute } from '../../../lib/http/routes';
import { codeOf } from '../../helpers/errors';

function code(url: string): string | undefined {
  return codeOf(() => parseRoute(url));
}

describe('parseRoute', () => {
  describe('not ours', () => {
    it.each([
      '/',
      '/index.html',
      '/live/ch1.ism', // the presentation file itself (the host may serve it)
      '/live/ch1.ismc',
      '/live/ch1.ismv',
      '/live/ch1.isml.bak/Manifest',
      '/live/%41/b', // percent-encoded but no .isml
      '/live/ch1.ismlx/Manifest',
      '/live/x?file=ch1.isml', // .isml only in the query
    ])('%s -> undefined', (url) => {
      expect(parseRoute(url)).toBeUndefined();
    });

    it('ignores a malformed escape in a URL that names no .isml', () => {
      expect(parseRoute('/static/%zz.png')).toBeUndefined();
    });
  });

  describe('Manifest', () => {
    it.each(['/ch1.isml/Manifest', '/ch1.isml/manifest', '/ch1.isml/MANIFEST', '/ch1.isml/Manifest/', '/ch1.isml/Manifest?x=1', '/CH1.ISML/Manifest'])(
      '%s',
      (url) => {
        const r = parseRoute(url);
        expect(r?.resource).toEqual({ kind: 'manifest' });
        expect(r?.point.toLowerCase()).toBe('ch1.isml');
      },
    );

    it('keeps nested folders in the point path', () => {
      expect(parseRoute('/a/b/c/ch1.isml/Manifest')).toEqual({ point: 'a/b/c/ch1.isml', resource: { kind: 'manifest' } });
    });

    it('accepts an Events() prefix before Manifest', () => {
      expect(parseRoute('/ch1.isml/Events(203_0)/Manifest')?.resource).toEqual({ kind: 'manifest' });
    });

    it('routes the IIS and Azure Manifest(format=…) spellings to the DASH and HLS outputs, others as unknown', () => {
      for (const [url, format] of [
        ['/ch1.isml/Manifest(format=m3u8-aapl)', 'm3u8'],
        ['/ch1.isml/Manifest(format=m3u8-aapl).m3u8', 'm3u8'],
        ['/ch1.isml/Manifest(format=M3U8-CMAF)', 'm3u8'],
        ['/ch1.isml/Manifest(format=mpd-time-csf)', 'mpd'],
        ['/ch1.isml/Manifest(format=mpd-time-cmaf).mpd', 'mpd'],
        ['/ch1.isml/.mpd', 'mpd'],
        ['/ch1.isml/.m3u8', 'm3u8'],
      ] as const) {
        expect([url, parseRoute(url)?.resource]).toEqual([url, { kind: 'output', format }]);
      }
      expect(parseRoute('/ch1.isml/Manifest(format=f4m)')?.resource).toMatchObject({ kind: 'unknown' });
      expect(parseRoute('/ch1.isml/Manifest(foo)')?.resource).toMatchObject({ kind: 'unknown' });
    });

    it('routes cmaf/<rep>/… to init, segment and media playlist, with the representation id validated', () => {
      expect(parseRoute('/ch1.isml/cmaf/video=2000000/init.mp4')?.resource).toEqual({ kind: 'cmaf', rep: 'video=2000000', part: 'init', time: 0n });
      expect(parseRoute('/ch1.isml/cmaf/audio=128000%2Clang=en/index.m3u8')?.resource).toEqual({
        kind: 'cmaf',
        rep: 'audio=128000,lang=en',
        part: 'playlist',
        time: 0n,
      });
      expect(parseRoute('/ch1.isml/cmaf/video=2000000/18014398509481985.m4s')?.resource).toEqual({
        kind: 'cmaf',
        rep: 'video=2000000',
        part: 'segment',
        time: 18014398509481985n,
      });
      expect(parseRoute('/ch1.isml/cmaf/video/init.mp4')?.resource).toMatchObject({ kind: 'unknown' });
      expect(parseRoute('/ch1.isml/cmaf/video=1/x.m4s')?.resource).toMatchObject({ kind: 'unknown' });
      expect(() => parseRoute('/ch1.isml/cmaf/video=1/99999999999999999999.m4s')).toThrow('2^64');
      expect(parseRoute('/ch1.isml/time')?.resource).toEqual({ kind: 'time' });
    });

    it('leaves the definition file itself to the host, and reports unknown nouns below it', () => {
      expect(parseRoute('/ch1.isml')).toBeUndefined();
      expect(() => parseRoute('/../ch1.isml')).toThrow(expect.objectContaining({ code: 'ERR_TRAVERSAL' }));
      expect(parseRoute('/ch1.isml/')?.resource).toMatchObject({ kind: 'unknown' });
      expect(parseRoute('/ch1.isml/settings')?.resource).toMatchObject({ kind: 'unknown' });
      expect(parseRoute('/ch1.isml/Manifest/extra')?.resource).toMatchObject({ kind: 'unknown' });
    });
  });

  describe('ingest', () => {
    it('parses Streams(id) in any case', () => {
      expect(parseRoute('/live/ch1.isml/Streams(720p)')).toEqual({
        point: 'live/ch1.isml',
        resource: { kind: 'ingest', streamId: '720p', eventId: undefined },
      });
      expect(parseRoute('/ch1.isml/streams(8872-stream0)')?.resource).toEqual({ kind: 'ingest', streamId: '8872-stream0', eventId: undefined });
    });

    it('parses Events(e)/Streams(id)', () => {
      expect(parseRoute('/ch1.isml/Events(ev1)/Streams(video0)')?.resource).toEqual({ kind: 'ingest', streamId: 'video0', eventId: 'ev1' });
      expect(parseRoute('/ch1.isml/events(ev.1)/streams(a)')?.resource).toEqual({ kind: 'ingest', streamId: 'a', eventId: 'ev.1' });
    });

    it.each(['/ch1.isml/Streams()', '/ch1.isml/Streams(a b)', '/ch1.isml/Streams(a%2Cb)', `/ch1.isml/Streams(${'x'.repeat(129)})`, '/ch1.isml/Events(a b)/Streams(x)'])(
      '%s -> ERR_BAD_URL',
      (url) => {
        expect(code(url)).toBe('ERR_BAD_URL');
      },
    );

    it('accepts a 128-character stream id', () => {
      expect(parseRoute(`/ch1.isml/Streams(${'x'.repeat(128)})`)?.resource).toMatchObject({ kind: 'ingest' });
    });
  });

  describe('fragments', () => {
    it('parses QualityLevels(b)/Fragments(track=t)', () => {
      expect(parseRoute('/live/ch1.isml/QualityLevels(2500000)/Fragments(video=17040672020000000)')).toEqual({
        point: 'live/ch1.isml',
        resource: { kind: 'fragment', part: 'Fragments', bitrate: 2500000, attributes: [], track: 'video', time: 17_040_672_020_000_000n },
      });
    });

    it.each([
      ['FragmentInfo', 'FragmentInfo'],
      ['fragmentinfo', 'FragmentInfo'],
      ['RawFragments', 'RawFragments'],
      ['KeyFrames', 'KeyFrames'],
      ['keyframes', 'KeyFrames'],
      ['fragments', 'Fragments'],
    ])('parses %s', (noun, part) => {
      expect(parseRoute(`/ch1.isml/qualitylevels(128000)/${noun}(audio_eng=0)`)?.resource).toMatchObject({ kind: 'fragment', part, track: 'audio_eng', time: 0n });
    });

    it('accepts times up to 2^64-1 exactly', () => {
      expect(parseRoute('/ch1.isml/QualityLevels(1)/Fragments(video=18446744073709551615)')?.resource).toMatchObject({ time: 2n ** 64n - 1n });
      expect(parseRoute('/ch1.isml/QualityLevels(1)/Fragments(video=00000000000000000001)')?.resource).toMatchObject({ time: 1n });
    });

    it.each([
      '/ch1.isml/QualityLevels(1)/Fragments(video=18446744073709551616)', // 2^64
      '/ch1.isml/QualityLevels(1)/Fragments(video=99999999999999999999)',
      '/ch1.isml/QualityLevels(1)/Fragments(video=184467440737095516150)', // 21 digits
      '/ch1.isml/QualityLevels(1)/Fragments(video=-1)',
      '/ch1.isml/QualityLevels(1)/Fragments(video=1.5)',
      '/ch1.isml/QualityLevels(1)/Fragments(video=)',
      '/ch1.isml/QualityLevels(1)/Fragments(=5)',
      '/ch1.isml/QualityLevels(1)/Fragments(1video=5)',
      '/ch1.isml/QualityLevels(x)/Fragments(video=5)',
      '/ch1.isml/QualityLevels(-1)/Fragments(video=5)',
      '/ch1.isml/QualityLevels(12345678901)/Fragments(video=5)',
      '/ch1.isml/QualityLevels()/Fragments(video=5)',
    ])('%s -> ERR_BAD_URL', (url) => {
      expect(code(url)).toBe('ERR_BAD_URL');
    });

    it('parses custom attributes of QualityLevels()', () => {
      expect(parseRoute('/ch1.isml/QualityLevels(307200,Compatibility=Handheld)/Fragments(video=19680000)')?.resource).toEqual({
        kind: 'fragment',
        part: 'Fragments',
        bitrate: 307200,
        attributes: [['Compatibility', 'Handheld']],
        track: 'video',
        time: 19_680_000n,
      });
      expect(parseRoute('/ch1.isml/QualityLevels(1,A=b,Scheme=urn:scte:scte35:2013:bin)/Fragments(v=0)')?.resource).toMatchObject({
        attributes: [
          ['A', 'b'],
          ['Scheme', 'urn:scte:scte35:2013:bin'],
        ],
      });
    });

    it.each(['/ch1.isml/QualityLevels(1,A)/Fragments(v=0)', '/ch1.isml/QualityLevels(1,=b)/Fragments(v=0)', '/ch1.isml/QualityLevels(1,A=)/Fragments(v=0)', '/ch1.isml/QualityLevels(1,1A=b)/Fragments(v=0)', '/ch1.isml/QualityLevels(1,A=b c)/Fragments(v=0)'])(
      'rejects malformed custom attributes: %s',
      (url) => {
        expect(code(url)).toBe('ERR_BAD_URL');
      },
    );

    it('accepts an Events() prefix before QualityLevels()', () => {
      expect(parseRoute('/ch1.isml/Events(203_0)/QualityLevels(1)/Fragments(v=2)')?.resource).toMatchObject({ kind: 'fragment', time: 2n });
    });

    it('reports HLS-style fragment formats and unknown nouns as unknown', () => {
      expect(parseRoute('/ch1.isml/QualityLevels(1)/Fragments(video=0,format=m3u8-aapl)')?.resource).toMatchObject({ kind: 'unknown' });
      expect(parseRoute('/ch1.isml/QualityLevels(1)/Fragments(video=0, format=m3u8-aapl)')?.resource).toMatchObject({ kind: 'unknown' });
      expect(parseRoute('/ch1.isml/QualityLevels(1)/Noise(video=0)')?.resource).toMatchObject({ kind: 'unknown' });
      expect(parseRoute('/ch1.isml/QualityLevels(1)/Manifest(video,format=m3u8-aapl)')?.resource).toMatchObject({ kind: 'unknown' });
    });
  });

  describe('percent-encoding', () => {
    it('decodes each segment exactly once', () => {
      expect(parseRoute('/live%2528x%2529/ch1.isml/Manifest')?.point).toBe('live%28x%29/ch1.isml');
      expect(parseRoute('/my%20folder/ch%31.isml/Manifest')?.point).toBe('my folder/ch1.isml');
    });

    it('decodes an encoded .isml and encoded nouns', () => {
      expect(parseRoute('/ch1%2Eisml/Manifest')?.point).toBe('ch1.isml');
      expect(parseRoute('/ch1.isml/QualityLevels%28100%29/Fragments%28video%3D5%29')?.resource).toMatchObject({ kind: 'fragment', bitrate: 100, time: 5n });
    });

    it('does not decode %2528 into a parenthesis', () => {
      expect(parseRoute('/ch1.isml/Streams%2528a%2529')?.resource).toMatchObject({ kind: 'unknown' });
    });

    it.each(['/a%zz/ch1.isml/Manifest', '/ch1.isml/Streams(%zz)', '/ch1.isml/%', '/ch1.isml/Streams(a%2)', '/%E0%A4%A/ch1.isml/Manifest'])(
      'rejects malformed escapes: %s -> ERR_BAD_URL',
      (url) => {
        expect(code(url)).toBe('ERR_BAD_URL');
      },
    );
  });

  describe('traversal', () => {
    it.each([
      '/../ch1.isml/Manifest',
      '/a/../ch1.isml/Manifest',
      '/a/./ch1.isml/Manifest',
      '/ch1.isml/../../etc/passwd.isml/Manifest',
      '/ch1.isml/../Manifest',
      '/%2e%2e/ch1.isml/Manifest',
      '/%2E%2E/ch1.isml/Manifest',
      '/a/%2e%2E%2F%2e%2e%2Fch1.isml/Manifest',
      '/%2E%2E%2F/ch1.isml/Manifest',
      '/a%2Fb/ch1.isml/Manifest',
      '/a\\b/ch1.isml/Manifest',
      '/..\\ch1.isml/Manifest',
      '/a%5cb/ch1.isml/Manifest',
      '/a%5C..%5Cch1.isml/Manifest',
      '/a%00/ch1.isml/Manifest',
      '/ch1.isml%00.txt/x.isml/Manifest',
      '//etc/ch1.isml/Manifest',
      '//ch1.isml/Manifest',
      '/a//ch1.isml/Manifest',
      '/ch1.isml//Manifest',
      'http://h/x.isml/Manifest',
      'https://evil.example/live/ch1.isml/Manifest',
      'ch1.isml/Manifest',
      '/C:/x.isml/Manifest',
      '/c:/windows/x.isml/Manifest',
      '/C:x.isml/Manifest',
      '/C%3A/x.isml/Manifest',
    ])('%s -> ERR_TRAVERSAL', (url) => {
      expect(code(url)).toBe('ERR_TRAVERSAL');
    });

    it('allows a drive-like segment after the point (it names no file)', () => {
      expect(parseRoute('/ch1.isml/C:')?.resource).toMatchObject({ kind: 'unknown' });
    });

    it('allows dots inside names', () => {
      expect(parseRoute('/a..b/.hidden/ch.1.isml/Manifest')?.point).toBe('a..b/.hidden/ch.1.isml');
    });
  });

  describe('on-demand presentations (.ism)', () => {
    it('routes the Manifest and fragments of a .ism, marked on demand', () => {
      expect(parseRoute('/vod/ch1.ism/Manifest')).toEqual({ point: 'vod/ch1.ism', resource: { kind: 'manifest' }, onDemand: true });
      expect(parseRoute('/vod/CH1.ISM/QualityLevels(150000,lang=en)/Fragments(audio_en=20000000)')).toEqual({
        point: 'vod/CH1.ISM',
        onDemand: true,
        resource: { kind: 'fragment', part: 'Fragments', bitrate: 150000, attributes: [['lang', 'en']], track: 'audio_en', time: 20000000n },
      });
      expect(parseRoute('/vod/%63h1.ism/Manifest')?.point).toBe('vod/ch1.ism');
    });

    it('a live .isml never says on demand, and wins over a .ism folder before it', () => {
      expect(parseRoute('/ch1.isml/Manifest')).not.toHaveProperty('onDemand');
      expect(parseRoute('/a.ism/b.isml/Manifest')).toEqual({ point: 'a.ism/b.isml', resource: { kind: 'manifest' } });
    });

    it.each(['/vod/../ch1.ism/Manifest', '/vod/..%2Fch1.ism/Manifest', '/vod%5c..%5cch1.ism/Manifest', '/C:/ch1.ism/Manifest', 'ch1.ism/Manifest'])(
      '%s -> ERR_TRAVERSAL',
      (url) => expect(code(url)).toBe('ERR_TRAVERSAL'),
    );

    it('rejects malformed escapes and nouns with ERR_BAD_URL', () => {
      expect(code('/vod/%zz/ch1.ism/Manifest')).toBe('ERR_BAD_URL');
      expect(code('/ch1.ism/QualityLevels(x)/Fragments(video=0)')).toBe('ERR_BAD_URL');
    });
  });
});
