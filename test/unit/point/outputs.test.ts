/**
 * The DASH/HLS view of a point: the session's anchor (rebased times below 2^53, kept over a restart
 * when the encoder goes on), and HLS numbering as the window slides (media sequence, discontinuities,
 * target duration), on a PublishingPoint fed synthetic fragments with an injected clock.
 */
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import { anchorFits, anchorFromJson, anchorToJson, chooseAnchor } from '../../../lib/point/anchor';
import { fragment, ingestHeader, payload } from '../../helpers/fmp4';

const SECOND = 10_000_000n;
/** Output time before the session's first fragment, seconds. */
const MARGIN = 10n;

describe('the anchor', () => {
  it('an encoder starting near 0: base is 10 s before its first fragment, which ends at its arrival', () => {
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    const a = chooseAnchor(0n, 2n * SECOND, 10_000_000, now);
    expect(a.base).toBe(-MARGIN);
    // Output time of the end: 2 s + the margin, placed at `now`.
    expect(a.availabilityStart).toBe(now - (10 + 2) * 1000);
    // The live MPD starts at the first fragment.
    expect(a.start).toBe(MARGIN);
  });

  it('a UTC-locked encoder keeps its clock: output time 0 is whole seconds after the epoch, 10 s before its first fragment', () => {
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    const end = BigInt(now / 1000) * SECOND + 1234n; // 10 MHz ticks since the epoch: above 2^53
    expect(end).toBeGreaterThan(2n ** 53n);
    const a = chooseAnchor(end - 2n * SECOND, end, 10_000_000, now + 700);
    expect(a.base).toBe(BigInt(now / 1000) - 2n - MARGIN);
    expect(a.availabilityStart).toBe(Number(a.base) * 1000);
    // What the outputs write for it: seconds, far below 2^53.
    expect(end - a.base * SECOND).toBeLessThan(20n * SECOND);
  });

  it('a saved anchor fits a session whose first fragment lands within a minute of where it puts it', () => {
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    const a = chooseAnchor(98n * SECOND, 100n * SECOND, 10_000_000, now);
    // The encoder went on for 30 s while the process restarted.
    expect(anchorFits(a, 130n * SECOND, 10_000_000, now + 30_000)).toBe(true);
    // It restarted from 0 instead: its times no longer match the wall clock.
    expect(anchorFits(a, 2n * SECOND, 10_000_000, now + 30_000)).toBe(false);
  });

  it('round-trips through the state file and refuses anything else', () => {
    const a = chooseAnchor(0n, 2n * SECOND, 10_000_000, 1_800_000_000_000);
    expect(anchorFromJson(JSON.parse(JSON.stringify(anchorToJson(a))))).toEqual(a);
    for (const bad of [null, 1, {}, { availabilityStart: 1.5, base: '0' }, { availabilityStart: 1, base: 'x' }, { availabilityStart: 1, base: 5 }]) {
      expect(anchorFromJson(bad)).toBeUndefined();
    }
  });
});

describe('HLS numbering as the window slides', () => {
  const spec = { trackId: 1, kind: 'video' as const, bitrate: 100_000, width: 160, height: 90 };

  function live(window: number) {
    const clock = { now: Date.UTC(2026, 11, 1, 12, 0, 0) };
    const p = new PublishingPoint(
      'ch1.isml',
      resolveSettings([{ startOnFirstRequest: true, manifestWindowLength: window, lookaheadChunks: 0 }]),
      resolveOptions({ stateFile: false, clock: { now: () => clock.now } }),
    );
    const s = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    s.write(ingestHeader([spec]));
    let seq = 1;
    const send = (time: bigint, duration = SECOND): void => {
      clock.now += Number(duration / 10_000n);
      s.write(fragment(seq++, [{ trackId: 1, time, duration, samples: [payload(64, seq), payload(32, seq + 1)] }]));
    };
    const media = (): string => p.hlsMedia('video=100000')!.body.toString('utf8');
    const tag = (text: string, name: string): string | undefined => new RegExp(`^#${name}:(.*)$`, 'm').exec(text)?.[1];
    return { p, clock, send, media, tag };
  }

  it('the media sequence grows by one per segment that left, whatever the polls in between', () => {
    const h = live(4);
    for (let i = 0n; i < 6n; i++) h.send(i * SECOND);
    const first = h.media();
    const seq1 = Number(h.tag(first, 'EXT-X-MEDIA-SEQUENCE'));
    const uris1 = first.split('\n').filter((l) => l.endsWith('.m4s'));
    for (let i = 6n; i < 9n; i++) h.send(i * SECOND);
    h.media();
    for (let i = 9n; i < 12n; i++) h.send(i * SECOND);
    const second = h.media();
    const seq2 = Number(h.tag(second, 'EXT-X-MEDIA-SEQUENCE'));
    const uris2 = second.split('\n').filter((l) => l.endsWith('.m4s'));
    expect(seq2 - seq1).toBe(6);
    // The same sequence number names the same segment in both polls.
    for (const [i, uri] of uris2.entries()) if (i + 6 < uris1.length) expect(uri).toBe(uris1[i + 6]);
    expect(h.tag(second, 'EXT-X-TARGETDURATION')).toBe('1');
    // Rebased: the margin and a few seconds, far below 2^53.
    const t = BigInt(uris2[0]!.slice(0, -4));
    expect(t % SECOND).toBe(0n);
    expect(t > MARGIN * SECOND && t < (MARGIN + 12n) * SECOND).toBe(true);
  });

  it('a gap in the timeline is a discontinuity; the discontinuity sequence counts it once it has left', () => {
    const h = live(10);
    for (let i = 0n; i < 4n; i++) h.send(i * SECOND);
    h.clock.now += 3000;
    for (let i = 7n; i < 10n; i++) h.send(i * SECOND); // 3 s missing: an encoder that was away
    const withGap = h.media();
    expect(withGap.match(/#EXT-X-DISCONTINUITY\n/g)).toHaveLength(1);
    expect(h.tag(withGap, 'EXT-X-DISCONTINUITY-SEQUENCE')).toBe('0');
    // A date-time restates where the media goes on after the gap.
    expect(withGap.match(/#EXT-X-PROGRAM-DATE-TIME/g)).toHaveLength(2);
    for (let i = 10n; i < 20n; i++) h.send(i * SECOND);
    const after = h.media();
    expect(after).not.toMatch(/#EXT-X-DISCONTINUITY\n/);
    expect(h.tag(after, 'EXT-X-DISCONTINUITY-SEQUENCE')).toBe('1');
  });

  it('the target duration covers the longest segment and does not shrink when it leaves', () => {
    const h = live(4);
    h.send(0n, 3n * SECOND);
    for (let i = 0n; i < 8n; i++) h.send(3n * SECOND + i * SECOND);
    const text = h.media();
    expect(text).not.toMatch(/#EXTINF:3/);
    expect(h.tag(text, 'EXT-X-TARGETDURATION')).toBe('3');
  });

  it('the MPD and the playlists are rendered once per change of the timeline, not per request', () => {
    const h = live(0);
    for (let i = 0n; i < 4n; i++) h.send(i * SECOND);
    const mpd = h.p.mpd();
    const master = h.p.hlsMaster();
    const media = h.p.hlsMedia('video=100000');
    expect([h.p.mpd(), h.p.hlsMaster(), h.p.hlsMedia('video=100000')]).toEqual([mpd, master, media].map((r) => expect.objectContaining({ etag: r!.etag })));
    expect(h.p.mpd()).toBe(mpd);
    expect(h.p.hlsMedia('video=100000')).toBe(media);
    h.send(4n * SECOND);
    expect(h.p.mpd()).not.toBe(mpd);
    expect(h.p.mpd().etag).not.toBe(mpd.etag);
    expect(h.p.hlsMedia('video=100000')!.body.toString()).not.toBe(media!.body.toString());
  });

  it('the end of stream ends every playlist and makes the MPD static', () => {
    const h = live(0);
    for (let i = 0n; i < 4n; i++) h.send(i * SECOND);
    expect(h.p.mpd().body.toString()).toMatch(/type="dynamic"/);
    h.p.command('stop');
    expect(h.media()).toMatch(/#EXT-X-ENDLIST\n?$/);
    expect(h.p.mpd().body.toString()).toMatch(/type="static"/);
  });
});
