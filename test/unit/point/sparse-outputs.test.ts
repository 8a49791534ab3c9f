/**
 * Sparse tracks of a publishing point in its DASH and HLS outputs: captions listed up to the parent's
 * edge as a text AdaptationSet and a SUBTITLES playlist whose holes are EXT-X-GAP entries, served with
 * a CMAF header for subtitles and with their TTML times moved onto the output timeline (rewritten once,
 * kept and counted with the packaged headers, from a store that streams too); SCTE-35 markers as the
 * MPD's EventStream and the playlists' date ranges, at the fragment time plus Azure's delta.
 */
import { Readable } from 'node:stream';
import { resolveSettings } from '../../../lib/definition';
import { scte35Sample, spliceInsertSection } from '../../../lib/encoder/scte35';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { SCTE35_SCHEME } from '../../../lib/model';
import { type LiveSmoothOptions, resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import type { PackagedFragment } from '../../../lib/point/content';
import { sparsePlaylist } from '../../../lib/point/outputs';
import { memoryStore } from '../../../lib/store/memory';
import { isThenable } from '../../../lib/store/types';
import { TrackSpec, box, cat, fragment, ftyp, lsmBox, lsmSmil, moov, payload, u16 } from '../../helpers/fmp4';
import { videoSpec } from '../../helpers/sparse';

const S = 10_000_000n;
/** An `stpp` sample entry (ISO/IEC 14496-30): TTML namespace, no schema, no auxiliary MIME types. */
const STPP = box('stpp', Buffer.alloc(6), u16(1), Buffer.from('http://www.w3.org/ns/ttml\0\0\0'));
const video = videoSpec();
// The encoder names the handler `text`: the CMAF header says `subt`.
const captions: TrackSpec = {
  trackId: 2,
  kind: 'text',
  bitrate: 1000,
  entry: STPP,
  language: 'eng',
  params: { trackName: 'captions', parentTrackName: 'video', FourCC: 'TTML', Subtype: 'CAPT', systemLanguage: 'en' },
};
// No manifestOutput: the Smooth manifest does not carry the message, DASH and HLS still do.
const ads: TrackSpec = { trackId: 3, kind: 'text', bitrate: 0, handler: 'meta', params: { trackName: 'ads', parentTrackName: 'video', Subtype: 'DATA', Scheme: SCTE35_SCHEME } };

const SECTION = spliceInsertSection({ eventId: 9, pts: 540_000n, duration: 360_000n, autoReturn: true, outOfNetwork: true });
const ttml = (n: number): Buffer =>
  Buffer.from(`<tt xmlns="http://www.w3.org/ns/ttml" xml:lang="en"><body><div><p begin="00:00:00.000" end="00:00:02.000">caption ${n}</p></div></body></tt>`);

function point(options: LiveSmoothOptions = {}): PublishingPoint {
  return new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true, lookaheadChunks: 2 }]), resolveOptions({ stateFile: false, ...options }));
}

/**
 * Video 0..14 s (2 s fragments, 0..10 s listed with lookahead 2), captions for every 2 s but 6 and 8,
 * a malformed one at 12 s, and a marker in a fragment at 5 s whose message says 1 s later, a 4 s break.
 */
function feed(p: PublishingPoint): void {
  const s = p.openIngest('s', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  s.write(cat(ftyp(), lsmBox(lsmSmil([video, captions, ads])), moov([video, captions, ads])));
  let n = 1;
  for (let i = 0; i < 8; i++) {
    const t = BigInt(i) * 2n * S;
    if (i === 6) s.write(fragment(n++, [{ trackId: 2, time: t, duration: 2n * S, samples: [Buffer.from('<tt xmlns="http://www.w3.org/ns/ttml"><body><p begin="1s">')] }]));
    else if (i !== 3 && i !== 4) s.write(fragment(n++, [{ trackId: 2, time: t, duration: 2n * S, samples: [ttml(i)] }]));
    if (i === 3) s.write(fragment(n++, [{ trackId: 3, time: 5n * S, duration: 4n * S, samples: [scte35Sample(9, Number(S), SECTION)] }]));
    s.write(fragment(n++, [{ trackId: 1, time: t, duration: 2n * S, samples: [payload(100, i)] }]));
  }
}

const text = (b: Buffer): string => b.toString('utf8');
async function settled(p: PackagedFragment | PromiseLike<PackagedFragment | undefined> | undefined): Promise<PackagedFragment> {
  const got = isThenable(p) ? await p : p;
  if (!got) throw new Error('no segment');
  return got;
}

describe('sparse tracks in the DASH and HLS outputs of a point', () => {
  const p = point();
  feed(p);

  it('lists the captions as a text AdaptationSet up to the parent edge, and the marker as an Event at its time plus its delta', () => {
    const mpd = text(p.mpd().body);
    const set = /<AdaptationSet[^>]*contentType="text"[\s\S]*?<\/AdaptationSet>/.exec(mpd)?.[0] ?? '';
    expect(set).toContain('lang="en"');
    expect(set).toContain('<Role schemeIdUri="urn:mpeg:dash:role:2011" value="caption"/>');
    expect(set).toContain('<Representation id="captions=1000" bandwidth="1000" codecs="stpp.ttml.im1t"/>');
    // Output time = stored + 10 s (the anchor's base is 10 s before the first fragment).
    expect(set.match(/<S [^>]*\/>/g)).toEqual(['<S t="100000000" d="20000000" r="2"/>', '<S t="200000000" d="20000000"/>']);
    // The ad-marker track is not a set of its own.
    expect(mpd.match(/<AdaptationSet /g)).toHaveLength(2);
    expect(mpd).toContain('<EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="10000000" presentationTimeOffset="100000000">');
    expect(mpd).toContain(`<Event presentationTime="160000000" duration="40000000" id="9"><Signal xmlns="http://www.scte.org/schemas/35/2016"><Binary>${SECTION.toString('base64')}</Binary></Signal></Event>`);
    // The Smooth manifest lists the marker without its message (no manifestOutput).
    expect(text(p.manifest().body)).toMatch(/<StreamIndex[^>]*Name="ads"[\s\S]*<c t="50000000" d="40000000"\/>/);
  });

  it('offers the captions as an HLS subtitle playlist whose hole is EXT-X-GAP entries ending at the parent\'s segment starts', () => {
    expect(text(p.hlsMaster().body)).toContain('SUBTITLES="subs"');
    const playlist = text(p.hlsMedia('captions=1000')!.body).trimEnd().split('\n');
    const entries = playlist.filter((l) => !l.startsWith('#EXT-X-DATERANGE') && !l.startsWith('#EXT-X-PROGRAM-DATE-TIME'));
    expect(entries.slice(2)).toEqual([
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-MAP:URI="init.mp4"',
      '#EXTINF:2.000,',
      '100000000.m4s',
      '#EXTINF:2.000,',
      '120000000.m4s',
      '#EXTINF:2.000,',
      '140000000.m4s',
      '#EXT-X-GAP',
      '#EXTINF:2.000,',
      '160000000.m4s',
      '#EXT-X-GAP',
      '#EXTINF:2.000,',
      '180000000.m4s',
      '#EXTINF:2.000,',
      '200000000.m4s',
    ]);
    // Every media playlist dates the marker: 16 s of output time after the anchor's output time 0.
    const start = new Date(p.anchor!.availabilityStart + 16_000).toISOString();
    for (const id of ['video=800000', 'captions=1000']) {
      expect(text(p.hlsMedia(id)!.body)).toContain(`#EXT-X-DATERANGE:ID="ads-160000000",START-DATE="${start}",PLANNED-DURATION=4.000,SCTE35-OUT=0x${SECTION.toString('hex').toUpperCase()}`);
    }
    expect(p.hlsMedia('ads=0')).toBeUndefined();
  });

  it('serves the captions\' init segment as a CMAF subtitle track: subt handler, sthd, the stpp entry', () => {
    const init = p.initSegment('captions=1000')!.init.toString('latin1');
    expect(init).toContain('subt');
    expect(init).toContain('sthd');
    expect(init).toContain('stpp');
    expect(init).not.toContain('vmhd');
  });

  it('serves each caption with its TTML times on the output timeline, rewritten once and counted', async () => {
    const cachedBefore = p.memory.cached;
    const found = p.segment('captions=1000', 120_000_000n);
    if (found.status !== 'ok') throw new Error(found.status);
    const first = await settled(p.cmafSegment(found.found, { decodeTimeOffset: found.decodeTimeOffset }));
    const body = first.data as Buffer;
    expect(text(body)).toContain('<p begin="00:00:12.000" end="00:00:14.000">caption 1</p>');
    expect(first.dataSize).toBe(body.length);
    expect(first.head.readUInt32BE(first.moofSize)).toBe(8 + body.length);
    expect(p.memory.cached).toBeGreaterThanOrEqual(cachedBefore + body.length);
    const again = await settled(p.cmafSegment(found.found, { decodeTimeOffset: found.decodeTimeOffset }));
    expect(again.data).toBe(body);
    expect(again.head).toBe(first.head);
  });

  it('serves a caption it cannot read as it came', async () => {
    const found = p.segment('captions=1000', 220_000_000n);
    if (found.status !== 'ok') throw new Error(found.status);
    const got = await settled(p.cmafSegment(found.found, { decodeTimeOffset: found.decodeTimeOffset }));
    expect(text(got.data as Buffer)).toBe('<tt xmlns="http://www.w3.org/ns/ttml"><body><p begin="1s">');
  });

  it('rewrites captions from a store that answers with streams', async () => {
    const q = point({
      store: (o) => {
        const store = memoryStore(o);
        return {
          put: (track, f) => store.put(track, f),
          get: (track, time) => {
            const f = store.get(track, time) as ReturnType<typeof store.get> & { data: Buffer };
            return f && Promise.resolve({ ...f, data: Readable.from([f.data.subarray(0, 10), f.data.subarray(10)]) });
          },
          trim: (track, end) => store.trim(track, end),
          clear: () => store.clear(),
          get bytes() {
            return store.bytes;
          },
        };
      },
    });
    feed(q);
    const found = q.segment('captions=1000', 100_000_000n);
    if (found.status !== 'ok') throw new Error(found.status);
    const got = await settled(q.cmafSegment(found.found, { decodeTimeOffset: found.decodeTimeOffset }));
    expect(text(got.data as Buffer)).toContain('<p begin="00:00:10.000" end="00:00:12.000">caption 0</p>');
    // From the cache the second time: no store read.
    const again = q.cmafSegment(found.found, { decodeTimeOffset: found.decodeTimeOffset });
    expect(isThenable(again)).toBe(false);
  });
});

describe('a CMAF TTML track (.cmft) in the outputs', () => {
  it('is kept timed from its samples, served so in Smooth, and on the output timeline in DASH and HLS', async () => {
    const p = point();
    const v = p.openIngest('v', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    v.write(cat(ftyp(), lsmBox(lsmSmil([video])), moov([video])));
    const t = p.openIngest('subs.cmft', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24, cmaf: 'subs' }));
    t.write(cat(ftyp('cmfc', 0, ['cmfc']), moov([{ trackId: 1, kind: 'text', handler: 'subt', timescale: 1000, entry: STPP }])));
    for (let i = 0; i < 6; i++) {
      v.write(fragment(i + 1, [{ trackId: 1, time: BigInt(i) * 2n * S, duration: 2n * S, samples: [payload(100, i)] }]));
      // CMAF: the document at 4 s says 00:00:04.
      const doc = `<tt xmlns="http://www.w3.org/ns/ttml"><body><p begin="00:00:0${2 * i}.000" end="00:00:${String(2 * i + 2).padStart(2, '0')}.000">at ${2 * i}</p></body></tt>`;
      t.write(fragment(i + 1, [{ trackId: 1, time: 0, decodeTime: i * 2000, duration: 2000, samples: [Buffer.from(doc)], noTfxd: true }], { defaultBaseIsMoof: true }));
    }
    expect(p.manifest().body.toString()).toMatch(/<StreamIndex Type="text" Name="subs" Subtype="SUBT"[^>]*TimeScale="1000"/);
    const smooth = p.lookup('subs', 0, [], 4000n);
    if (smooth.status !== 'ok') throw new Error(smooth.status);
    expect(text((await settled(p.smoothFragment(smooth))).data as Buffer)).toContain('<p begin="00:00:00.000" end="00:00:02.000">at 4</p>');
    // The outputs start 10 s before the session's first fragment: media time 4 s is output time 14 s.
    const found = p.segment('subs=0', 14_000n);
    if (found.status !== 'ok') throw new Error(found.status);
    const dash = await settled(p.cmafSegment(found.found, { decodeTimeOffset: found.decodeTimeOffset }));
    expect(text(dash.data as Buffer)).toContain('<p begin="00:00:14.000" end="00:00:16.000">at 4</p>');
    expect(p.mpd().body.toString()).toMatch(/<AdaptationSet[^>]*contentType="text"/);
  });
});

describe('sparsePlaylist', () => {
  const at = (seconds: number, duration = 2): { time: bigint; duration: bigint } => ({ time: BigInt(seconds) * S, duration: BigInt(duration) * S });
  const show = (entries: ReturnType<typeof sparsePlaylist>): string[] =>
    entries.map((e) => `${e.discontinuity ? '|' : ''}${e.gap ? 'gap ' : ''}${e.time / S}+${e.duration / S}`);

  it('fills holes up to each parent segment start, and follows the parent\'s discontinuities', () => {
    // Parent: 0..8 s, then an encoder restart: 20..26 s.
    const parent = [0, 2, 4, 6, 20, 22, 24].map((t) => at(t));
    expect(show(sparsePlaylist([at(0), at(2), at(21, 3), at(24)], parent, [20n * S]))).toEqual([
      '0+2', '2+2', 'gap 4+2', 'gap 6+14', '|gap 20+1', '21+3', '24+2',
    ]);
  });

  it('needs no filler between contiguous or overlapping entries, and starts with the first entry', () => {
    expect(show(sparsePlaylist([at(3), at(5, 3), at(7)], [at(0), at(2), at(4), at(6)], []))).toEqual(['3+2', '5+3', '7+2']);
    expect(sparsePlaylist([], [at(0)], [])).toEqual([]);
  });
});
