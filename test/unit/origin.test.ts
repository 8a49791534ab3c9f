/**
 * The origin is an object the host creates and passes: no registry by root string. The middleware
 * and the management API take it (or a handler that serves it); a root path for the management API,
 * or options beside an origin, are refused with the option named. The origin forwards its points'
 * events.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Origin, createOrigin, liveSmooth } from '../../lib';
import { SmoothIngestParser } from '../../lib/ingest/smooth';
import type { PointEvents } from '../../lib/point/events';
import { smoothErrorOf } from '../helpers/errors';
import { fixture, fragmentsOfRound } from '../helpers/raw-ingest';
import { isml } from '../helpers/server';

const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-origin-'));
writeFileSync(path.join(root, 'ch1.isml'), isml());
mkdirSync(path.join(root, 'sports'));
writeFileSync(path.join(root, 'sports', 'ch2.isml'), isml());
const made: Origin[] = [];
const origin = (options = {}): Origin => {
  const o = createOrigin(root, { stateFile: false, ...options });
  made.push(o);
  return o;
};
afterAll(() => {
  for (const o of made) o.close();
  rmSync(root, { recursive: true, force: true });
});

describe('createOrigin', () => {
  it('validates the root and the options at once', () => {
    expect(smoothErrorOf(() => createOrigin('')).code).toBe('ERR_INVALID_OPTION');
    expect(smoothErrorOf(() => createOrigin(root, { lookaheadChunks: -1 })).message).toContain('options.lookaheadChunks');
  });

  it('makes a new origin each time: two on one root share nothing', async () => {
    const a = origin();
    const b = origin();
    expect(a).not.toBe(b);
    expect(await a.resolve('ch1.isml')).not.toBe(await b.resolve('ch1.isml'));
  });
});

describe('what takes the origin', () => {
  it('liveSmooth(origin) and liveSmooth.admin(origin) serve the same origin, hence the same points', async () => {
    const o = origin();
    const handler = liveSmooth(o);
    const admin = liveSmooth.admin(o);
    expect(handler.origin).toBe(o);
    expect(admin.origin).toBe(o);
    expect(liveSmooth.admin(handler).origin).toBe(o);
    expect(await handler.origin.resolve('ch1.isml')).toBe(await admin.origin.resolve('ch1.isml'));
  });

  it('liveSmooth(root, options) makes an origin of its own', () => {
    const handler = liveSmooth(root, { stateFile: false });
    made.push(handler.origin);
    expect(handler.origin).toBeInstanceOf(Origin);
    expect(handler.origin.root).toBe(path.resolve(root));
  });

  it('refuses options beside an origin, and a root path for the management API', () => {
    const o = origin();
    expect(smoothErrorOf(() => liveSmooth(o, { lookaheadChunks: 1 })).message).toContain('createOrigin(root, options)');
    const refused = smoothErrorOf(() => liveSmooth.admin(root as never));
    expect(refused.code).toBe('ERR_INVALID_OPTION');
    expect(refused.message).toContain('createOrigin(root)');
  });
});

describe('events', () => {
  it('forwards encoderRestart and fragmentDropped of its points, with the point path in the payload', async () => {
    const o = origin();
    const p = (await o.resolve('sports/ch2.isml'))!;
    type Seen = { [K in 'encoderRestart' | 'fragmentDropped']: Array<PointEvents[K][0]> };
    const byOrigin: Seen = { encoderRestart: [], fragmentDropped: [] };
    const byPoint: Seen = { encoderRestart: [], fragmentDropped: [] };
    o.on('encoderRestart', (e) => byOrigin.encoderRestart.push(e));
    o.on('fragmentDropped', (e) => byOrigin.fragmentDropped.push(e));
    p.on('encoderRestart', (e) => byPoint.encoderRestart.push(e));
    p.on('fragmentDropped', (e) => byPoint.fragmentDropped.push(e));
    const F = fixture();
    const open = (...fragments: Buffer[][]) => {
      const session = p.openIngest('enc', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
      session.write(F.header);
      for (const list of fragments) for (const f of list) session.write(f);
      return session;
    };
    // 8 s, then a reconnect that resends the last two fragments of every track (6 duplicates), then a
    // restart from time 0 (continued on the timeline, the default).
    open(fragmentsOfRound(0), fragmentsOfRound(1)).abort('disconnected');
    open(fragmentsOfRound(1).slice(6)).abort('disconnected');
    open(fragmentsOfRound(0)).abort('disconnected');

    expect(byOrigin.fragmentDropped).toHaveLength(6);
    for (const e of byOrigin.fragmentDropped) {
      expect(e).toEqual({ point: 'sports/ch2.isml', streamId: 'enc', track: expect.any(String), time: expect.any(BigInt), reason: 'duplicate' });
    }
    expect(byOrigin.encoderRestart).toEqual([
      {
        point: 'sports/ch2.isml',
        streamId: 'enc',
        track: expect.stringContaining('video'),
        time: 0n,
        newest: 70_000_000n,
        action: 'continue',
        shift: expect.any(BigInt),
      },
    ]);
    // The same payloads the point raised, in the same order.
    expect(byOrigin).toEqual(byPoint);
    expect(p.encoderCounts).toEqual({ restarts: 1, duplicatesDropped: 6, refused: 0 });
  });
});
