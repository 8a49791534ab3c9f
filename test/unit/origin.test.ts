/**
 * The origin is an object the host creates and passes: no registry by root string. The middleware
 * and the management API take it (or a handler that serves it); a root path for the management API,
 * or options beside an origin, are refused with the option named.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Origin, createOrigin, liveSmooth } from '../../lib';
import { smoothErrorOf } from '../helpers/errors';
import { isml } from '../helpers/server';

const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-origin-'));
writeFileSync(path.join(root, 'ch1.isml'), isml());
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
