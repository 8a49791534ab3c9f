/**
 * Tracks fed by a live connection belong to its credentials (issue finding 7): a connection of another
 * identity that names those tracks, the same stream id, or a new quality level of their StreamIndexes is
 * refused with ERR_TRACK_TAKEN (409) before anything changes, and the real encoder goes on unaffected.
 * Reconnects and redundant encoders of the same identity still attach; once the real encoder's
 * connection is gone (or it sent end of stream), another identity may feed the tracks.
 */
import { resolveSettings } from '../../../lib/definition';
import { STATUS } from '../../../lib/http/status';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import type { PointEvents } from '../../../lib/point/events';
import { LOCAL_IDENTITY, type IngestSession } from '../../../lib/point/session';
import { smoothErrorOf } from '../../helpers/errors';
import { fixture, fragmentsOfRound, headerWithLsm, parseManifest } from '../../helpers/raw-ingest';

const F = fixture();
const SECOND = 10_000_000n;

function harness() {
  const clock = { now: 1_000_000 };
  const p = new PublishingPoint(
    'ch1.isml',
    resolveSettings([{ startOnFirstRequest: true }]),
    resolveOptions({ stateFile: false, clock: { now: () => clock.now } }),
  );
  const rejected: Array<PointEvents['inputRejected'][0]> = [];
  const dropped: Array<PointEvents['fragmentDropped'][0]> = [];
  p.on('inputRejected', (e) => rejected.push(e));
  p.on('fragmentDropped', (e) => dropped.push(e));
  const open = (streamId: string, identity?: string): IngestSession =>
    p.openIngest(streamId, '203.0.113.5', new SmoothIngestParser({ maxBoxSize: 1 << 24 }), identity);
  /** Writes `data`; a refusal aborts the session as the middleware does and is returned. */
  const write = (s: IngestSession, data: Buffer): unknown => {
    try {
      s.write(data);
      return undefined;
    } catch (err) {
      s.abort('error', err as never);
      return err;
    }
  };
  const round = (s: IngestSession, r: number): void => {
    for (const f of fragmentsOfRound(r)) s.write(f);
    clock.now += 4000;
  };
  const listed = (name: 'video' | 'audio'): bigint[] =>
    parseManifest(p.manifest().body.toString('utf8')).streams.find((st) => st.name === name)!.fragments.map((f) => f.t);
  return { p, clock, rejected, dropped, open, write, round, listed };
}

/** The fixture's header with other bitrates: new quality levels of the same StreamIndexes. */
const otherBitrates = (): Buffer => headerWithLsm((smil) => smil.replace(/"(100000|50000|32000)"/g, '"$17"'));
/** The fixture's header with other track names: StreamIndexes of their own. */
const otherNames = (): Buffer => headerWithLsm((smil) => smil.replace(/value="(video|audio)"/g, 'value="$1cam2"'));

describe('a connection of another identity', () => {
  it('naming tracks a live encoder feeds, under another stream id: 409 ERR_TRACK_TAKEN, the real encoder unaffected', () => {
    const h = harness();
    const real = h.open('real', 'token:0');
    real.write(F.header);
    h.round(real, 0);
    const intruder = h.open('intruder', 'token:1');
    const err = smoothErrorOf(() => {
      throw h.write(intruder, F.header);
    });
    expect([err.code, STATUS[err.code]]).toEqual(['ERR_TRACK_TAKEN', 409]);
    expect(err.message).toMatch(/fed live by stream real of an encoder with other credentials; a reconnect or redundant encoder must present the same credentials/);
    expect(intruder.closed).toBe(true);
    expect(h.rejected).toEqual([expect.objectContaining({ streamId: 'intruder', code: 'ERR_TRACK_TAKEN' })]);
    expect(h.p.streams.map((s) => s.id)).toEqual(['real']);
    // Its fragments never arrive; the real encoder goes on, nothing of it dropped.
    expect(h.write(intruder, fragmentsOfRound(1)[0]!)).toBeUndefined();
    h.round(real, 1);
    real.write(F.mfra);
    expect(h.dropped).toEqual([]);
    expect(h.listed('video')).toEqual(Array.from({ length: 8 }, (_, i) => BigInt(i) * SECOND));
    expect(real.eos).toBe(true);
  });

  it('on the same stream id: 409, even for tracks the stream does not have yet', () => {
    const h = harness();
    const real = h.open('real', 'basic:enc');
    real.write(F.header);
    h.round(real, 0);
    for (const header of [F.header, otherNames()]) {
      const err = smoothErrorOf(() => {
        throw h.write(h.open('real', 'allow:10.0.0.0/8'), header);
      });
      expect([err.code, err.message]).toEqual(['ERR_TRACK_TAKEN', expect.stringContaining('stream real is live from an encoder with other credentials')]);
    }
    expect(h.p.tracks).toHaveLength(3);
    expect(h.p.streams).toEqual([expect.objectContaining({ id: 'real', connections: 1 })]);
  });

  it('adding a quality level to a StreamIndex a live encoder feeds: 409, no track added', () => {
    const h = harness();
    const real = h.open('real', 'token:0');
    real.write(F.header);
    h.round(real, 0);
    const before = h.p.manifest().body.toString('utf8');
    const err = smoothErrorOf(() => {
      throw h.write(h.open('extra', 'hook'), otherBitrates());
    });
    expect([err.code, err.message]).toEqual(['ERR_TRACK_TAKEN', expect.stringMatching(/would add a quality level to video "video", fed live by stream real/)]);
    expect(h.p.tracks.map((t) => t.bitrate).sort()).toEqual([100000, 32000, 50000]);
    expect(h.p.manifest().body.toString('utf8')).toBe(before);
  });

  it('feeding StreamIndexes of its own is accepted (encoders with separate credentials side by side)', () => {
    const h = harness();
    const real = h.open('real', 'token:0');
    real.write(F.header);
    const other = h.open('cam2', 'token:1');
    expect(h.write(other, otherNames())).toBeUndefined();
    expect(h.p.tracks).toHaveLength(6);
  });

  it('may take over once the real encoder disconnected', () => {
    const h = harness();
    const real = h.open('real', 'token:0');
    real.write(F.header);
    h.round(real, 0);
    real.abort('disconnected');
    const next = h.open('next', 'token:1');
    expect(h.write(next, F.header)).toBeUndefined();
    expect(next.closed).toBe(false);
  });

  it('is not held off by a connection of the real encoder that already sent end of stream', () => {
    const h = harness();
    const real = h.open('real', 'token:0');
    real.write(F.header);
    const sibling = h.open('real-audio', 'token:0'); // keeps the point Started
    sibling.write(otherNames());
    h.round(real, 0);
    real.write(F.mfra);
    expect(real.feeding).toBe(false);
    const next = h.open('next', 'token:1');
    expect(h.write(next, F.header)).toBeUndefined();
  });
});

describe('connections of the same identity', () => {
  it('a reconnect (same stream id) while the previous connection is still open attaches', () => {
    const h = harness();
    const old = h.open('real', 'token:0');
    old.write(F.header);
    h.round(old, 0);
    const again = h.open('real', 'token:0');
    expect(h.write(again, F.header)).toBeUndefined();
    h.round(again, 1);
    expect(h.rejected).toEqual([]);
    expect(h.listed('video')).toHaveLength(6); // 8 fragments, the newest 2 held back by the lookahead
  });

  it('a redundant encoder (other stream id, same credentials) attaches and its copies are dropped as duplicates', () => {
    const h = harness();
    const a = h.open('primary', 'basic:enc');
    const b = h.open('backup', 'basic:enc');
    a.write(F.header);
    expect(h.write(b, F.header)).toBeUndefined();
    h.round(a, 0);
    h.round(b, 0);
    expect(h.rejected).toEqual([]);
    expect(h.dropped.length).toBe(12);
    expect(b.closed).toBe(false);
  });

  it('without an identity every caller is the local one, as before', () => {
    const h = harness();
    const a = h.open('primary');
    const b = h.open('backup');
    expect(a.identity).toBe(LOCAL_IDENTITY);
    a.write(F.header);
    expect(h.write(b, F.header)).toBeUndefined();
    // An identified encoder is another identity than the local one.
    const err = smoothErrorOf(() => {
      throw h.write(h.open('primary', 'token:0'), F.header);
    });
    expect(err.code).toBe('ERR_TRACK_TAKEN');
  });
});
