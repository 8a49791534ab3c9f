/**
 * CMAF upload (DASH-IF live media ingest, one segment per request, ffmpeg's `-f dash`): the MPD's
 * templates and the paths they name, bounded against hostile MPDs and paths; the chunks of a segment
 * joined into one fragment for any split; and a point's upload channel: an init segment opens its
 * representation's session, media segments feed it, and the refusals carry the DASH-IF ingest codes.
 */
import { resolveSettings } from '../../../lib/definition';
import type { ParsedFragment } from '../../../lib/ingest/fragment';
import { MPD_LIMITS, checkUploadPath, matchUploadPath, parseUploadMpd } from '../../../lib/ingest/mpd';
import { SegmentJoiner, joinChunks } from '../../../lib/ingest/segments';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { IngestEvent } from '../../../lib/ingest/types';
import { UPLOAD_LIMITS, UploadChannel } from '../../../lib/ingest/upload';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import { codeOf, smoothErrorOf } from '../../helpers/errors';
import { PPS, SPS, avcC, box, cat, fragment, ftyp, moov, payload, str, u32, visualEntry } from '../../helpers/fmp4';

/** ffmpeg 5.1's last MPD of `-f dash -streaming 1 -use_template 1 -use_timeline 1`, two H.264 bitrates and AAC. */
const FFMPEG_MPD = `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
	xmlns="urn:mpeg:dash:schema:mpd:2011"
	xmlns:xlink="http://www.w3.org/1999/xlink"
	xsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011 http://standards.iso.org/ittf/PubliclyAvailableStandards/MPEG-DASH_schema_files/DASH-MPD.xsd"
	profiles="urn:mpeg:dash:profile:isoff-live:2011"
	type="static"
	mediaPresentationDuration="PT8.0S"
	maxSegmentDuration="PT2.0S"
	minBufferTime="PT4.0S">
	<ProgramInformation>
	</ProgramInformation>
	<ServiceDescription id="0">
	</ServiceDescription>
	<Period id="0" start="PT0.0S">
		<AdaptationSet id="0" contentType="video" startWithSAP="1" segmentAlignment="true" bitstreamSwitching="true" frameRate="25/1" maxWidth="640" maxHeight="360" par="16:9">
			<Representation id="0" mimeType="video/mp4" codecs="avc1.64001e" bandwidth="600000" width="640" height="360" sar="1:1">
				<SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
					<SegmentTimeline>
						<S t="0" d="25600" r="3" />
					</SegmentTimeline>
				</SegmentTemplate>
			</Representation>
			<Representation id="1" mimeType="video/mp4" codecs="avc1.64000c" bandwidth="200000" width="320" height="180" sar="1:1">
				<SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
					<SegmentTimeline>
						<S t="0" d="25600" r="3" />
					</SegmentTimeline>
				</SegmentTemplate>
			</Representation>
		</AdaptationSet>
		<AdaptationSet id="1" contentType="audio" startWithSAP="1" segmentAlignment="true" bitstreamSwitching="true">
			<Representation id="2" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="96000" audioSamplingRate="48000">
				<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2" />
				<SegmentTemplate timescale="48000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
					<SegmentTimeline>
						<S t="0" d="95232" />
						<S d="96256" r="2" />
					</SegmentTimeline>
				</SegmentTemplate>
			</Representation>
		</AdaptationSet>
	</Period>
</MPD>
`;

interface RepSpec {
  id: string;
  type?: 'video' | 'audio' | 'text' | 'application';
  bandwidth?: number;
  lang?: string;
  init?: string;
  media?: string;
}

/** An MPD with one AdaptationSet per representation, templates on the representation. */
function mpd(reps: RepSpec[], o: { type?: 'dynamic' | 'static'; extra?: string } = {}): string {
  const sets = reps.map((r) => {
    const attrs = `${r.type ? ` contentType="${r.type}"` : ''}${r.lang ? ` lang="${r.lang}"` : ''}`;
    const bw = r.bandwidth === undefined ? '' : ` bandwidth="${r.bandwidth}"`;
    const init = r.init ?? 'init-stream$RepresentationID$.m4s';
    const media = r.media ?? 'chunk-stream$RepresentationID$-$Number%05d$.m4s';
    return `<AdaptationSet${attrs}><Representation id="${r.id}"${bw}><SegmentTemplate initialization="${init}" media="${media}"/></Representation></AdaptationSet>`;
  });
  return `<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="${o.type ?? 'dynamic'}">${o.extra ?? ''}<Period>${sets.join('')}</Period></MPD>`;
}

const btrt = (avg: number): Buffer => box('btrt', u32(0), u32(avg), u32(avg));
const videoEntry = (): Buffer => visualEntry('avc1', 320, 180, avcC([SPS], [PPS]), btrt(300_000));
/** A CMAF header: ftyp and a moov of `tracks` video tracks (or one of `handler`). */
function header(o: { tracks?: number; kind?: 'video' | 'audio'; handler?: string } = {}): Buffer {
  const kind = o.kind ?? 'video';
  return cat(
    ftyp('cmfc', 0, ['iso6', 'cmfc']),
    moov(
      Array.from({ length: o.tracks ?? 1 }, (_, i) => ({
        trackId: i + 1,
        kind,
        handler: o.handler,
        timescale: kind === 'video' ? 12800 : 48000,
        ...(kind === 'video' ? { entry: videoEntry() } : {}),
      })),
    ),
  );
}
const styp = (...brands: string[]): Buffer => box('styp', str('msdh'), u32(0), ...['msdh', 'msix', ...brands].map(str));
/** Chunk `k` of a video segment: one frame of 512 ticks (12800 Hz, 25 fps). */
const chunk = (k: number, start = 0): Buffer =>
  fragment(k + 1, [{ trackId: 1, time: 0, decodeTime: start + k * 512, duration: 512, samples: [payload(100 + (k % 7), k)], noTfxd: true }], { defaultBaseIsMoof: true });
/** Segment `n` (1 s) of video as ffmpeg's `-streaming 1` writes it: styp and 25 one-frame chunks. */
const segment = (n: number, o: { last?: boolean; chunks?: number } = {}): Buffer =>
  cat(styp(...(o.last ? ['lmsg'] : [])), ...Array.from({ length: o.chunks ?? 25 }, (_, k) => chunk(k, n * 12800)));

describe('upload paths', () => {
  it('takes bounded relative paths of safe segments and refuses the rest', () => {
    for (const ok of ['manifest.mpd', 'video/init.m4s', 'a/b/c/d/e/f/g/h.cmfv', 'chunk-stream0-00001.m4s', 'x_~.-y']) expect(checkUploadPath(ok)).toBe(ok);
    expect(codeOf(() => checkUploadPath('a/../b.m4s'))).toBe('ERR_TRAVERSAL');
    expect(codeOf(() => checkUploadPath('..'))).toBe('ERR_TRAVERSAL');
    expect(codeOf(() => checkUploadPath('./a.m4s'))).toBe('ERR_TRAVERSAL');
    for (const bad of ['', 'a//b', '/a', 'a/', 'a b.m4s', 'a%2f.m4s', 'a\\b', 'Streams(x)', 'a/b/c/d/e/f/g/h/i', 'x'.repeat(129), `${'a/'.repeat(200)}b`]) {
      expect([bad, codeOf(() => checkUploadPath(bad))]).toEqual([bad, expect.stringMatching(/ERR_BAD_URL|ERR_TRAVERSAL/)]);
    }
  });
});

describe('upload MPD', () => {
  it("reads ffmpeg's MPD: each representation's type, bandwidth and segment paths", () => {
    const m = parseUploadMpd(FFMPEG_MPD, '');
    expect(m.static).toBe(true);
    expect(m.representations.map((r) => [r.id, r.type, r.bandwidth, r.init, r.unsupported])).toEqual([
      ['0', 'video', 600_000, 'init-stream0.m4s', undefined],
      ['1', 'video', 200_000, 'init-stream1.m4s', undefined],
      ['2', 'audio', 96_000, 'init-stream2.m4s', undefined],
    ]);
    expect(matchUploadPath(m, 'init-stream1.m4s')).toEqual({ rep: m.representations[1], kind: 'init' });
    expect(matchUploadPath(m, 'chunk-stream2-00042.m4s')).toEqual({ rep: m.representations[2], kind: 'media' });
    expect(matchUploadPath(m, 'chunk-stream2-123456.m4s')?.kind).toBe('media'); // past the %05d width
    for (const miss of ['chunk-stream3-00001.m4s', 'chunk-stream0-.m4s', 'chunk-stream0-0000a.m4s', 'init-stream0.m4s.bak', 'x/init-stream0.m4s']) {
      expect([miss, matchUploadPath(m, miss)]).toEqual([miss, undefined]);
    }
  });

  it('resolves templates from the MPD folder, with $Time$, $Bandwidth%0Nd$, $$ and mimeType, contentType or nothing', () => {
    const m = parseUploadMpd(
      mpd([
        { id: 'v1', bandwidth: 800_000, init: '$RepresentationID$/init.mp4', media: '$RepresentationID$/$Time$.cmfv' },
        { id: 'a', type: 'audio', bandwidth: 96_000, lang: 'en-US', init: 'a-$Bandwidth%08d$.mp4', media: 'a-$Number$.cmfa' },
      ]),
      'live/ch',
    );
    expect(m.static).toBe(false);
    expect(m.representations.map((r) => [r.id, r.type, r.language, r.init])).toEqual([
      ['v1', undefined, undefined, 'live/ch/v1/init.mp4'],
      ['a', 'audio', 'en-US', 'live/ch/a-00096000.mp4'],
    ]);
    expect(matchUploadPath(m, 'live/ch/v1/90000.cmfv')?.rep.id).toBe('v1');
    expect(matchUploadPath(m, 'v1/90000.cmfv')).toBeUndefined();
    expect(parseUploadMpd(mpd([{ id: 'x', type: 'text', init: 'x.mp4', media: 'x$Number$.cmft' }]), '').representations[0]).toMatchObject({ type: 'text', unsupported: undefined });
    expect(parseUploadMpd(mpd([{ id: 'x', type: 'application', init: 'x.mp4', media: 'x$Number$.cmfm' }]), '').representations[0]!.unsupported).toMatch(/metadata/);
  });

  it('refuses hostile or unusable MPDs with the reason', () => {
    const reason = (text: string, dir = ''): string => {
      const err = smoothErrorOf(() => parseUploadMpd(text, dir));
      expect(err.code).toBe('ERR_BAD_HEADER');
      return err.message;
    };
    expect(reason(`<MPD>${'<x/>'.repeat(MPD_LIMITS.maxBytes / 4 + 1)}</MPD>`)).toMatch(/larger than 1048576 bytes/);
    expect(reason('\x00\x01garbage\xff')).toMatch(/MPD/);
    expect(reason('<MPD><Period>')).toMatch(/not well-formed/);
    expect(reason('<html><body>hello</body></html>')).toMatch(/no <MPD> root/);
    expect(reason(`<MPD>${'<a>'.repeat(100)}${'</a>'.repeat(100)}</MPD>`)).toMatch(/deeper than/);
    expect(reason(`<MPD><Period>${'<AdaptationSet contentType="video"/>'.repeat(5000)}</Period></MPD>`)).toMatch(/more than 4096 elements/);
    const thousand = Array.from({ length: 1000 }, (_, i) => ({ id: `r${i}`, type: 'video' as const, bandwidth: 1000 + i }));
    expect(reason(mpd(thousand))).toMatch(/lists 1000 representations; a point takes at most 64/);
    expect(reason(mpd([{ id: 'a', init: '../x.mp4' }]))).toMatch(/initialization of representation a names \.\.\/x\.mp4/);
    expect(reason(mpd([{ id: 'a', media: '$RepresentationID$/../../$Number$.m4s' }]))).toMatch(/\.\. segments/);
    expect(reason(mpd([{ id: 'a', init: 'http://evil.example/x.mp4' }]))).toMatch(/relative path/);
    expect(reason(mpd([{ id: 'a', init: '/etc/passwd' }]))).toMatch(/relative path/);
    expect(reason(mpd([{ id: 'a' }]), '../x')).toMatch(/\.\. segments/);
    expect(reason(mpd([{ id: 'a b' }]))).toMatch(/Representation@id "a b"/);
    expect(reason(mpd([{ id: 'x'.repeat(49) }]))).toMatch(/Representation@id/);
    expect(reason(mpd([{ id: 'a' }, { id: 'a' }]))).toMatch(/two representations have the id a/);
    expect(reason(mpd([{ id: 'a', init: 'i.mp4' }, { id: 'b', init: 'i.mp4' }]))).toMatch(/shares its segment paths/);
    expect(reason(mpd([{ id: 'a', init: 'i$Number$.mp4' }]))).toMatch(/initialization of a names \$Number\$/);
    expect(reason(mpd([{ id: 'a', media: 'm.m4s' }]))).toMatch(/neither \$Number\$ nor \$Time\$/);
    expect(reason(mpd([{ id: 'a', media: 'm$Nmber$.m4s' }]))).toMatch(/unknown identifier \$Nmber\$/);
    expect(reason(mpd([{ id: 'a', media: 'm$Number.m4s' }]))).toMatch(/unmatched \$/);
    expect(reason(mpd([{ id: 'a', init: 'i$$.mp4' }]))).toMatch(/names i\$\.mp4/); // $$ is a literal $
    expect(reason(mpd([{ id: 'a', media: 'm$RepresentationID%05d$$Number$.m4s' }]))).toMatch(/unknown identifier/);
    expect(reason(mpd([{ id: 'a', media: `${'m'.repeat(300)}$Number$` }]))).toMatch(/longer than 256/);
    expect(reason(mpd([{ id: 'a', init: 'i$Bandwidth$.mp4' }]))).toMatch(/\$Bandwidth\$ but representation a has none/);
    expect(reason(mpd([{ id: 'a', bandwidth: 99_999_999_999 }]))).toMatch(/bandwidth/);
    expect(reason(mpd([{ id: 'a' }], { extra: '<BaseURL>http://cdn/</BaseURL>' }))).toMatch(/BaseURL is not supported/);
    expect(reason(mpd([{ id: 'a' }]).replace('<Period>', '<Period/><Period>'))).toMatch(/one Period, this MPD has 2/);
    expect(reason('<MPD><Period><AdaptationSet><Representation id="a"/></AdaptationSet></Period></MPD>')).toMatch(/no SegmentTemplate/);
    const bomb = `<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "${'x'.repeat(1000)}"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><MPD>&b;&b;&b;&b;</MPD>`;
    expect(reason(bomb)).toMatch(/MPD/);
    expect(reason(mpd([{ id: 'a', init: 'cmaf/$RepresentationID$/init.mp4' }]))).toMatch(/a path the point serves/);
    expect(reason(mpd([{ id: 'a', init: 'Manifest' }]))).toMatch(/a path the point serves/);
  });

  it('reads a long live MPD, skipping its segment timelines (1 MiB of <S>)', () => {
    const timeline = `<SegmentTimeline>${'<S d="96256"/><S d="95232"/>'.repeat(33_000)}</SegmentTimeline>`;
    const text = mpd([{ id: '0', type: 'audio', bandwidth: 96_000 }]).replace('"/></Representation>', `">${timeline}</SegmentTemplate></Representation>`);
    expect(text.length).toBeGreaterThan(900_000);
    expect(parseUploadMpd(text, '').representations.map((r) => r.id)).toEqual(['0']);
    // An unclosed timeline is not skipped: the XML bounds and check see it.
    expect(() => parseUploadMpd(text.replace('</SegmentTimeline>', ''), '')).toThrow(/MPD/);
  });
});

describe('chunks joined per segment', () => {
  /** Events of a SegmentJoiner over the CMAF parser, fed `input` in pieces cut at `cuts`, with `segments` declared. */
  function run(input: Buffer, segments: number[], cuts: number[]): IngestEvent[] {
    const joiner = new SegmentJoiner(new SmoothIngestParser({ maxBoxSize: 1 << 20, cmaf: 'video' }));
    for (const s of segments) joiner.segment(s);
    const out: IngestEvent[] = [];
    let at = 0;
    for (const cut of [...cuts, input.length]) {
      out.push(...joiner.push(input.subarray(at, cut)));
      at = cut;
    }
    out.push(...joiner.end());
    return out;
  }
  const summary = (events: IngestEvent[]): unknown[] =>
    events.map((e) =>
      e.type === 'fragment'
        ? { time: e.fragment.time, duration: e.fragment.duration, samples: e.fragment.samples.toArray(), bytes: Buffer.concat(e.fragment.data).toString('hex') }
        : { type: e.type },
    );

  it("joins a segment's chunks into one fragment with all their samples and bytes, for any split", () => {
    const init = header();
    const s0 = segment(0);
    const s1 = segment(1, { chunks: 3 });
    const input = cat(init, s0, s1);
    const whole = summary(run(input, [init.length, s0.length, s1.length], []));
    expect(whole.map((e) => (e as { duration?: bigint }).duration ?? (e as { type: string }).type)).toEqual(['header', 12_800n, 1536n]);
    const first = whole[1] as { time: bigint; samples: unknown[]; bytes: string };
    expect([first.time, first.samples.length, first.bytes.length / 2]).toEqual([0n, 25, Array.from({ length: 25 }, (_, k) => 100 + (k % 7)).reduce((a, b) => a + b)]);
    expect((whole[2] as { time: bigint }).time).toBe(12_800n);
    for (let cut = 1; cut < input.length; cut += 97) expect(summary(run(input, [init.length, s0.length, s1.length], [cut]))).toEqual(whole);
    expect(summary(run(input, [init.length, s0.length, s1.length], Array.from({ length: 300 }, (_, i) => i * 31 + 1)))).toEqual(whole);
    // Without declared segments every chunk passes as it is.
    expect(run(input, [], []).filter((e) => e.type === 'fragment')).toHaveLength(28);
  });

  it('refuses chunks that do not follow each other, and a segment that ends inside a box', () => {
    const init = header();
    const gap = cat(chunk(0), chunk(2));
    expect(smoothErrorOf(() => run(cat(init, gap), [init.length, gap.length], [])).message).toMatch(/starts at 1024, not where the one before it ended \(512\)/);
    const s0 = segment(0);
    expect(codeOf(() => run(cat(init, s0), [init.length, s0.length - 10, 10], []))).toBe('ERR_TRUNCATED');
    const parsed = (k: number): ParsedFragment => ({ trackId: 1, sequenceNumber: k, time: BigInt(k * 512), presentationTime: 0n, duration: 512n, sampleDescriptionIndex: undefined, decodeTime: 0n, samples: { count: 1 } as never, data: [], dataSize: 1, extra: [Buffer.alloc(8)] });
    expect(smoothErrorOf(() => joinChunks([parsed(0), parsed(1)])).message).toMatch(/boxes besides the trun/);
  });
});

describe('upload channel', () => {
  function harness(o: { idle?: number } = {}) {
    const p = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
    const channel = new UploadChannel({
      open: (id, parser, u) => p.openIngest(id, u.remoteAddress, parser, u.identity),
      maxBoxSize: 1 << 24,
      idleTimeout: o.idle ?? 0,
    });
    const who = { identity: 'local', remoteAddress: '127.0.0.1' };
    const log: string[] = [];
    p.on('streamStarted', (e) => log.push(`start ${e.streamId}${e.reconnect ? ' again' : ''}`));
    p.on('streamEnded', (e) => log.push(`end ${e.streamId} ${e.reason}`));
    p.on('fragment', (e) => log.push(`fragment ${e.track} ${e.fragment.time}+${e.fragment.duration}`));
    const put = (path: string, body: Buffer | string): string => channel.put(path, Buffer.from(body), who);
    return { p, channel, who, log, put };
  }
  const rep = (id: string, type: 'video' | 'audio', bandwidth: number): RepSpec => ({ id, type, bandwidth });

  it("takes ffmpeg's order: an init segment before the MPD is kept, init segments open sessions, media segments feed them, a static MPD ends them", () => {
    const h = harness();
    expect(h.put('init-stream2.m4s', header({ kind: 'audio' }))).toBe('held');
    expect(h.put('manifest.mpd', mpd([rep('0', 'video', 600_000), rep('1', 'video', 200_000), rep('2', 'audio', 96_000)]))).toBe('manifest');
    expect(h.put('init-stream0.m4s', header())).toBe('init');
    expect(h.put('init-stream1.m4s', header())).toBe('init');
    expect(h.put('init-stream1.m4s', header())).toBe('init'); // the same header again changes nothing
    expect(h.put('chunk-stream0-00001.m4s', segment(0))).toBe('media');
    expect(h.put('chunk-stream1-00001.m4s', segment(0))).toBe('media');
    expect(h.p.tracks.map((t) => [t.type, t.name, t.bitrate]).sort()).toEqual([['video', 'video', 200_000], ['video', 'video', 600_000]]);
    expect(h.channel.feeding.sort()).toEqual(['0', '1']);
    expect(h.put('chunk-stream0-00002.m4s', segment(1))).toBe('media');
    expect(h.p.streams.map((s) => s.id).sort()).toEqual(['video-0.cmfv', 'video-1.cmfv']);
    expect(h.log).toEqual([
      'start video-0.cmfv',
      'start video-1.cmfv',
      'fragment video/video/600000 0+12800',
      'fragment video/video/200000 0+12800',
      'fragment video/video/600000 12800+12800',
    ]);
    const done = h.channel.begin(); // a segment still arriving holds the end back
    expect(h.put('manifest.mpd', mpd([rep('0', 'video', 600_000), rep('1', 'video', 200_000), rep('2', 'audio', 96_000)], { type: 'static' }))).toBe('manifest');
    expect(h.log.filter((l) => l.startsWith('end'))).toEqual([]);
    done();
    expect(h.log.filter((l) => l.startsWith('end')).sort()).toEqual(['end video-0.cmfv eos', 'end video-1.cmfv eos']);
    expect(h.p.state).toBe('Stopped');
    // The held audio header was never used; the ended representations need their init again.
    expect(codeOf(() => h.put('chunk-stream0-00003.m4s', segment(2)))).toBe('ERR_NO_INIT');
  });

  it('answers with the DASH-IF ingest codes: 404 unknown path, 412 no init, 415 unsupported header, 400 malformed', () => {
    const h = harness();
    expect(codeOf(() => h.put('chunk-stream0-00001.m4s', segment(0)))).toBe('ERR_UNKNOWN_PATH'); // no MPD yet
    h.put('manifest.mpd', mpd([rep('0', 'video', 600_000), rep('2', 'audio', 96_000), { id: 't', type: 'text', init: 't.mp4', media: 't$Number$.cmft' }]));
    expect(smoothErrorOf(() => h.put('nothing-here.m4s', segment(0))).message).toMatch(/no SegmentTemplate of the MPD names nothing-here\.m4s/);
    expect(smoothErrorOf(() => h.put('chunk-stream0-00001.m4s', segment(0))).code).toBe('ERR_NO_INIT');
    const unsupported = (path: string, body: Buffer): string => {
      const err = smoothErrorOf(() => h.put(path, body));
      expect(err.code).toBe('ERR_UNSUPPORTED_MEDIA');
      return err.message;
    };
    expect(unsupported('init-stream0.m4s', header({ tracks: 2 }))).toMatch(/carries one track; this moov has 2/);
    expect(unsupported('init-stream0.m4s', ftyp('cmfc', 0, ['cmfc']))).toMatch(/no moov/);
    expect(unsupported('init-stream0.m4s', cat(header(), chunk(0)))).toMatch(/carries no media/);
    expect(unsupported('init-stream0.m4s', header({ handler: 'subt' }))).toMatch(/only TTML \(stpp\) can be described/);
    expect(unsupported('init-stream0.m4s', header({ handler: 'meta' }))).toMatch(/handler 'meta'/);
    expect(unsupported('init-stream0.m4s', header({ kind: 'audio' }))).toMatch(/is audio; the MPD says video/);
    expect(unsupported('t.mp4', header())).toMatch(/is video; the MPD says text/);
    const codec = cat(ftyp('cmfc', 0, ['cmfc']), moov([{ trackId: 1, kind: 'video', timescale: 12800, entry: visualEntry('vp09', 320, 180, btrt(1000)) }]));
    expect(unsupported('init-stream0.m4s', codec)).toMatch(/vp09/);
    expect(codeOf(() => h.put('init-stream0.m4s', Buffer.from('garbage, not boxes')))).toBe('ERR_BAD_BOX');
    expect(h.put('init-stream0.m4s', header())).toBe('init');
    expect(codeOf(() => h.put('chunk-stream0-00001.m4s', Buffer.from([0, 0, 0, 99, 0x6d, 0x6f, 0x6f, 0x66])))).toBe('ERR_BAD_BOX');
    expect(codeOf(() => h.put('chunk-stream0-00001.m4s', cat(header(), segment(0))))).toBe('ERR_BAD_FRAGMENT');
    expect(codeOf(() => h.put('manifest.mpd', '<MPD'))).toBe('ERR_BAD_HEADER');
    expect(codeOf(() => h.put('a/../b.m4s', segment(0)))).toBe('ERR_TRAVERSAL');
    // A refused MPD keeps the one before; an empty body is the ingest's opening request.
    expect(h.put('chunk-stream0-00001.m4s', Buffer.alloc(0))).toBe('nothing');
    // Another identity may not feed a representation's session.
    expect(codeOf(() => h.channel.put('chunk-stream0-00001.m4s', segment(0), { identity: 'token:1', remoteAddress: '203.0.113.9' }))).toBe('ERR_TRACK_TAKEN');
  });

  it('takes a TTML text representation (.cmft) as a text StreamIndex', () => {
    const h = harness();
    h.put('manifest.mpd', mpd([rep('0', 'video', 600_000), { id: 't', type: 'text', init: 't/init.mp4', media: 't/$Number$.cmft' }]));
    const stpp = box('stpp', Buffer.alloc(6), Buffer.from([0, 1]), Buffer.from('http://www.w3.org/ns/ttml\0\0\0'));
    expect(h.put('t/init.mp4', cat(ftyp('cmfc', 0, ['cmfc']), moov([{ trackId: 1, kind: 'text', handler: 'subt', timescale: 1000, entry: stpp }])))).toBe('init');
    const doc = Buffer.from('<tt xmlns="http://www.w3.org/ns/ttml"><body><p begin="00:00:04.000" end="00:00:06.000">x</p></body></tt>');
    h.put('t/3.cmft', fragment(1, [{ trackId: 1, time: 0, decodeTime: 4000, duration: 2000, samples: [doc], noTfxd: true }], { defaultBaseIsMoof: true }));
    expect(h.p.tracks.find((t) => t.type === 'text')).toMatchObject({ name: 'text', fourCC: 'TTML', timescale: 1000 });
    expect(h.p.streams.map((x) => x.id)).toContain('text-t.cmft');
    const found = h.p.lookup('text', 0, [], 4000n);
    expect(found.status).toBe('ok');
  });

  it('a bad media segment ends the session; the next one reopens it from the init segment kept', () => {
    const h = harness();
    h.put('manifest.mpd', mpd([rep('0', 'video', 600_000)]));
    h.put('init-stream0.m4s', header());
    h.put('chunk-stream0-00001.m4s', segment(0));
    const broken = cat(styp(), chunk(0, 12_800), chunk(5, 12_800));
    expect(codeOf(() => h.put('chunk-stream0-00002.m4s', broken))).toBe('ERR_BAD_FRAGMENT');
    expect(h.channel.feeding).toEqual([]);
    expect(h.put('chunk-stream0-00002.m4s', segment(1))).toBe('media');
    expect(h.log).toEqual([
      'start video-0.cmfv',
      'fragment video/video/600000 0+12800',
      'end video-0.cmfv error',
      'start video-0.cmfv again',
      'fragment video/video/600000 12800+12800',
    ]);
  });

  it('lmsg and DELETE end a representation (its init forgotten); a DELETE of a media segment changes nothing', () => {
    const h = harness();
    h.put('manifest.mpd', mpd([rep('0', 'video', 600_000), rep('1', 'video', 200_000)]));
    h.put('init-stream0.m4s', header());
    h.put('init-stream1.m4s', header());
    h.put('chunk-stream0-00001.m4s', segment(0));
    h.put('chunk-stream0-00002.m4s', segment(1, { last: true }));
    expect(h.log.slice(-2)).toEqual(['fragment video/video/600000 12800+12800', 'end video-0.cmfv eos']);
    expect(codeOf(() => h.put('chunk-stream0-00003.m4s', segment(2)))).toBe('ERR_NO_INIT');
    h.put('chunk-stream1-00001.m4s', segment(0));
    expect(h.channel.delete('chunk-stream1-00001.m4s')).toBe('nothing');
    expect(h.channel.delete('init-stream1.m4s')).toBe('removed');
    expect(h.log.slice(-1)).toEqual(['end video-1.cmfv eos']);
    expect(codeOf(() => h.channel.delete('init-stream1.m4s'))).toBe('ERR_UNKNOWN_PATH');
    expect(h.channel.delete('manifest.mpd')).toBe('removed');
    expect(codeOf(() => h.channel.delete('manifest.mpd'))).toBe('ERR_UNKNOWN_PATH');
  });

  it('without segments for the idle timeout a session closes as a dropped connection; the next segment reconnects', async () => {
    const h = harness({ idle: 40 });
    h.put('manifest.mpd', mpd([rep('0', 'video', 600_000)]));
    h.put('init-stream0.m4s', header());
    h.put('chunk-stream0-00001.m4s', segment(0));
    await new Promise((ok) => setTimeout(ok, 120));
    expect(h.log.slice(-1)).toEqual(['end video-0.cmfv disconnected']);
    expect(h.p.state).toBe('Started');
    h.put('chunk-stream0-00002.m4s', segment(1));
    expect(h.log.slice(-2)).toEqual(['start video-0.cmfv again', 'fragment video/video/600000 12800+12800']);
    h.channel.delete('manifest.mpd');
  });

  it('keeps a bounded number of held headers (the oldest go), and a new MPD closes the sessions of representations it changed', () => {
    const h = harness();
    for (let i = 0; i <= UPLOAD_LIMITS.maxHeaders; i++) expect(h.put(`held-${i}.m4s`, header())).toBe('held');
    h.put('manifest.mpd', mpd([{ ...rep('a', 'video', 600_000), init: 'held-0.m4s' }, { ...rep('b', 'video', 200_000), init: 'held-1.m4s' }]));
    expect(codeOf(() => h.put('chunk-streama-00001.m4s', segment(0)))).toBe('ERR_NO_INIT');
    expect(h.put('chunk-streamb-00001.m4s', segment(0))).toBe('media');
    h.put('manifest.mpd', mpd([{ ...rep('a', 'video', 600_000), init: 'held-0.m4s' }, { ...rep('b', 'video', 250_000), init: 'held-1.m4s' }]));
    expect(h.log.slice(-1)).toEqual(['end video-b.cmfv disconnected']);
  });

  it('names the StreamIndex after the content type and language, the bitrate after @bandwidth', () => {
    const h = harness();
    h.put('manifest.mpd', mpd([{ ...rep('v', 'video', 450_000) }, { ...rep('fr', 'audio', 64_000), lang: 'fr' }]));
    h.put('init-streamv.m4s', header());
    h.put('init-streamfr.m4s', header({ kind: 'audio' }));
    expect(h.p.streams.map((s) => s.id).sort()).toEqual(['audio_fr-fr.cmfa', 'video-v.cmfv']);
    expect(h.p.headers.map((t) => [t.info.type, t.info.name, t.info.bitrate]).sort()).toEqual([['audio', 'audio_fr', 64_000], ['video', 'video', 450_000]]);
  });
});
