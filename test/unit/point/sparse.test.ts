/**
 * Sparse tracks (captions, ad markers) in a publishing point: taken with the media in one POST or in
 * their own, stored and served without tfrf, listed only up to their parent's listed edge, carried in the
 * manifest where `manifestOutput` asks, trimmed with the parent's window, and never what keeps a point
 * going or ends it.
 */
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { SCTE35_SCHEME } from '../../../lib/model';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import type { SettingsOverrides } from '../../../lib/definition';
import { TrackSpec, cat, fragment, ftyp, lsmBox, lsmSmil, mfra, moov, payload } from '../../helpers/fmp4';
import { adSpec, captionSpec, videoSpec } from '../../helpers/sparse';

const S = 10_000_000n;
const video = videoSpec();
const captions = captionSpec(2);
const ads = adSpec(3);

function point(settings: SettingsOverrides = {}): PublishingPoint {
  return new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true, lookaheadChunks: 2, ...settings }]), resolveOptions({ stateFile: false }));
}

const header = (tracks: TrackSpec[]): Buffer => cat(ftyp(), lsmBox(lsmSmil(tracks)), moov(tracks));
const videoAt = (n: number, seconds: number): Buffer => fragment(n, [{ trackId: 1, time: BigInt(seconds) * S, samples: [payload(100, n)] }]);
const textAt = (trackId: number, n: number, time: bigint, duration: bigint, body: Buffer): Buffer =>
  fragment(n, [{ trackId, time, duration, samples: [body] }]);

function manifest(p: PublishingPoint): string {
  return p.manifest().body.toString('utf8');
}

/** The `c` lines of a StreamIndex. */
function listed(text: string, name: string): string[] {
  const m = new RegExp(`<StreamIndex[^>]* Name="${name}"[^>]*>([\\s\\S]*?)</StreamIndex>`).exec(text);
  if (!m) return [];
  return [...m[1]!.matchAll(/<c [^\n]*/g)].map((c) => c[0]);
}

describe('sparse tracks in the same POST as the media', () => {
  it('are described as text StreamIndexes with their parent, served without tfrf, and listed up to the parent edge', () => {
    const p = point();
    const s = p.openIngest('s', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    s.write(header([video, captions, ads]));
    const splice = Buffer.from('fc302000000000000000fff00506fe000dbba0000a000800', 'hex');
    for (let i = 0; i < 6; i++) {
      s.write(textAt(2, 100 + i, BigInt(i) * S, S, Buffer.from(`<tt>${i}</tt>`)));
      s.write(videoAt(i + 1, i));
    }
    // A marker at 2.5 s of unknown duration (0), carried in the manifest.
    s.write(textAt(3, 200, 25_000_000n, 0n, splice));
    // Video 0..5 arrived; with lookahead 2, 0..3 are listed (the newest listed starts at 3 s).
    const text = manifest(p);
    expect(text).toContain('<StreamIndex Type="text" Name="captions" Subtype="CAPT"');
    expect(text).toMatch(/Name="captions"[^>]* ParentStreamIndex="video"/);
    expect(text).toMatch(/Name="ads"[^>]* ParentStreamIndex="video" ManifestOutput="TRUE"/);
    expect(listed(text, 'video')).toHaveLength(4);
    expect(listed(text, 'captions')).toHaveLength(4); // 0..3 s: none beyond the parent's newest listed start
    expect(listed(text, 'ads')).toEqual([`<c t="25000000" d="0"><f i="0">${splice.toString('base64')}</f></c>`]);
    expect(p.tracks.filter((t) => t.parent === 'video').map((t) => [t.name, t.fourCC, t.scheme])).toEqual([
      ['captions', 'TTML', undefined],
      ['ads', 'DATA', SCTE35_SCHEME],
    ]);

    // Every sparse fragment the point has is served, listed or not, its tfrf naming the sparse
    // fragments after it that exist (none after the newest: dash.js wants the box all the same).
    const found = p.lookup('captions', 1000, [], 5n * S);
    expect(found).toMatchObject({ status: 'ok', tfrf: 0, complete: false });
    expect(p.awaitSuccessor(found as Extract<typeof found, { status: 'ok' }>)).toBeUndefined();
    expect(p.lookup('captions', 1000, [], 3n * S)).toMatchObject({ status: 'ok', tfrf: 2, complete: true });
    const media = p.lookup('video', 800000, [], 0n);
    expect(media).toMatchObject({ status: 'ok', tfrf: 2 });

    // The parent moves on: the caption at 4 s is listed with it.
    s.write(videoAt(7, 6));
    expect(listed(manifest(p), 'captions')).toHaveLength(5);
    expect(p.state).toBe('Started');
  });

  it('goes with the parent window: sparse fragments older than it leave the store', () => {
    const p = point({ manifestWindowLength: 4 });
    const s = p.openIngest('s', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    s.write(header([video, captions]));
    for (let i = 0; i < 20; i++) {
      s.write(textAt(2, 100 + i, BigInt(i) * S, S, Buffer.from(`<tt>${i}</tt>`)));
      s.write(videoAt(i + 1, i));
    }
    const text = manifest(p);
    const first = (name: string): string => listed(text, name)[0]!;
    expect(first('captions')).toMatch(/t="(\d+)"/);
    expect(/t="(\d+)"/.exec(first('captions'))![1]).toBe(/t="(\d+)"/.exec(first('video'))![1]);
    // Trimmed from the store too (two fragments beyond the window stay, as for media).
    expect(p.lookup('captions', 1000, [], 0n).status).toBe('not-found');
  });

  it('may announce an event minutes ahead, even after one of duration 0; hours ahead is a time jump', () => {
    const p = point();
    const s = p.openIngest('s', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    const rejected: string[] = [];
    p.on('inputRejected', (e) => rejected.push(e.code));
    s.write(header([video, ads]));
    s.write(videoAt(1, 0));
    s.write(textAt(3, 10, S, 0n, Buffer.from([1])));
    s.write(textAt(3, 11, 120n * S, 0n, Buffer.from([2])));
    expect(p.lookup('ads', 0, [], 120n * S).status).toBe('ok');
    expect(() => s.write(textAt(3, 12, 7200n * S, 0n, Buffer.from([3])))).toThrow(/jumped ahead/);
  });

  it('are refused when they name themselves as parent or are not text', () => {
    const p = point();
    const self = { ...captions, params: { ...captions.params, parentTrackName: 'captions' } };
    expect(() => p.openIngest('s', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 })).write(header([video, self]))).toThrow(/names itself/);
    const audio: TrackSpec = { trackId: 2, kind: 'audio', params: { trackName: 'audio', parentTrackName: 'video' } };
    expect(() => p.openIngest('t', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 })).write(header([video, audio]))).toThrow(/only a <textstream> can be sparse/);
  });
});

describe('sparse tracks of a restarted encoder', () => {
  it('take the shift its media took, in a POST of their own, and leave the media where the point ended', () => {
    const p = point({ encoderRestart: 'continue' });
    const first = p.openIngest('media', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    first.write(header([video, ads]));
    for (let i = 0; i < 6; i++) first.write(videoAt(i + 1, i));
    // A marker with a long break: the restart must not go past its end.
    first.write(textAt(3, 50, 3n * S, 100n * S, Buffer.from([1])));
    first.abort('disconnected');
    // The encoder restarts from 0: its media continue after 6 s, and so do its markers.
    const media = p.openIngest('media', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    media.write(header([video]));
    for (let i = 0; i < 4; i++) media.write(videoAt(i + 1, i));
    // The media continue where they ended (6 s), not after the break.
    expect(p.lookup('video', 800000, [], 6n * S).status).toBe('ok');
    const sparse = p.openIngest('sparse', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    sparse.write(header([{ ...ads, trackId: 1 }]));
    sparse.write(textAt(1, 1, S, 0n, Buffer.from([2])));
    // Shifted by the media's 6 s (plus the little wall time the restart took): after 6 s, not at 1 s.
    expect(p.lookup('ads', 0, [], 7n * S).status).toBe('ok');
    expect(sparse.closed).toBe(false);
  });
});

describe('sparse tracks in their own POST', () => {
  it('attach before the media, never make the point Started, and do not hold back the end of the stream', () => {
    const p = point();
    const sparse = p.openIngest('sparse', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    const sparseTracks: TrackSpec[] = [{ ...captions, trackId: 1 }, { ...ads, trackId: 2 }];
    sparse.write(header(sparseTracks));
    expect(sparse.sparseOnly).toBe(true);
    expect(p.state).toBe('Starting');
    sparse.write(textAt(1, 1, 0n, S, Buffer.from('<tt/>')));
    expect(p.state).toBe('Starting'); // a caption alone is nothing to play
    // Nothing is listed before the parent exists.
    expect(listed(manifest(p), 'captions')).toEqual([]);

    const media = p.openIngest('media', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    media.write(header([video]));
    expect(media.sparseOnly).toBe(false);
    for (let i = 0; i < 4; i++) media.write(videoAt(i + 1, i));
    expect(p.state).toBe('Started');
    expect(listed(manifest(p), 'captions')).toHaveLength(1);

    // The sparse POST closes between events (Azure) and reopens with its header: nothing changes.
    sparse.finish();
    const again = p.openIngest('sparse', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    again.write(header(sparseTracks));
    again.write(textAt(1, 2, S, S, Buffer.from('<tt/>')));
    expect(p.state).toBe('Started');
    expect(listed(manifest(p), 'captions')).toHaveLength(2);

    // The media's end of stream ends the point's stream, though the sparse POST is still open.
    media.write(mfra());
    expect(p.state).toBe('Stopped');
  });
});
