/**
 * The origin is an object the host creates and passes: no registry by root string. The middleware
 * and the management API take it (or a handler that serves it); a root path for the management API,
 * or options beside an origin, are refused with the option named. The origin forwards its points'
 * events.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Origin, createOrigin, liveSmooth, readDefinition } from '../../lib';
import { SmoothError } from '../../lib/errors';
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

/** A fresh root of its own, inside a folder that stands for "outside the root". */
function sandbox(): { outer: string; root: string } {
  const outer = mkdtempSync(path.join(tmpdir(), 'live-smooth-origin-fs-'));
  const media = path.join(outer, 'media');
  mkdirSync(media);
  return { outer, root: media };
}
const sandboxes: string[] = [];
afterAll(() => {
  for (const dir of sandboxes) rmSync(dir, { recursive: true, force: true });
});
const onSandbox = (options = {}): { o: Origin; outer: string; root: string } => {
  const { outer, root: media } = sandbox();
  sandboxes.push(outer);
  const o = createOrigin(media, { stateFile: false, ...options });
  made.push(o);
  return { o, outer, root: media };
};
/** The SmoothError a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<SmoothError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SmoothError);
  return err as SmoothError;
}
/** Every file name under `dir`, recursively, `/`-separated. */
function tree(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tree(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}
const symlinks = process.platform === 'win32' ? it.skip : it;

describe('writing definitions', () => {
  it('concurrent writes to one point run one at a time in call order (last writer wins); no temp file left', async () => {
    const { o, root: media } = onSandbox();
    const writes = Array.from({ length: 40 }, (_, i) =>
      o.write('race/ch1.isml', i % 2 === 0 ? { title: `t${i}` } : { estimatedTime: 1000 + i }),
    );
    const results = await Promise.all(writes);
    expect(results.map((r) => r.created)).toEqual([true, ...Array<boolean>(39).fill(false)]);
    expect(new Set(results.map((r) => r.point)).size).toBe(1);
    const text = readFileSync(path.join(media, 'race', 'ch1.isml'), 'utf8');
    expect(readDefinition(text).overrides).toMatchObject({ title: 't38', estimatedTime: 1039 });
    expect(text.match(/name="title"/g)).toHaveLength(1);
    expect(results[0]!.point.settings.title).toBe('t38');
    expect(tree(media)).toEqual(['race/ch1.isml']);
  });

  it('a write that fails removes its temp file', async () => {
    const { o, root: media } = onSandbox();
    mkdirSync(path.join(media, 'dir.isml', 'inside'), { recursive: true });
    await expect(o.write('dir.isml', { title: 'x' })).rejects.toThrow();
    expect(tree(media)).toEqual([]);
    expect(readdirSync(media)).toEqual(['dir.isml']);
    // The queue of that point goes on after a failure.
    rmSync(path.join(media, 'dir.isml'), { recursive: true });
    expect((await o.write('dir.isml', { title: 'x' })).created).toBe(true);
  });

  it('a state file that cannot be replaced leaves no temp file behind', async () => {
    const { outer, root: media } = sandbox();
    sandboxes.push(outer);
    writeFileSync(path.join(media, 'ch1.isml'), isml());
    const state = path.join(outer, 'state');
    mkdirSync(path.join(state, 'busy'), { recursive: true }); // a folder where the file should go: rename fails
    const o = createOrigin(media, { stateFile: state });
    made.push(o);
    (await o.resolve('ch1.isml'))!.command('start');
    await new Promise((ok) => setTimeout(ok, 400));
    expect(readdirSync(outer).sort()).toEqual(['media', 'state']);
    o.close();
  });
});

describe('symbolic links under the root', () => {
  symlinks('a definition whose real path leaves the root is not served (missing) and never written', async () => {
    const { o, outer, root: media } = onSandbox();
    const elsewhere = path.join(outer, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(path.join(outer, 'secret.isml'), isml({ title: 'Top secret' }));
    symlinkSync(elsewhere, path.join(media, 'linkdir'), 'dir');
    symlinkSync(path.join(outer, 'secret.isml'), path.join(media, 'leak.isml'));
    symlinkSync(path.join(outer, 'nowhere.isml'), path.join(media, 'dangling.isml'));
    writeFileSync(path.join(elsewhere, 'there.isml'), isml());

    expect(await o.resolve('leak.isml')).toBeUndefined();
    expect(await o.resolve('linkdir/there.isml')).toBeUndefined();
    expect(await o.list()).toEqual([]);
    for (const rel of ['linkdir/sub/x.isml', 'linkdir/x.isml', 'linkdir/there.isml', 'leak.isml', 'dangling.isml']) {
      const err = await rejection(o.write(rel, { title: 'pwned' }));
      expect({ rel, code: err.code }).toEqual({ rel, code: 'ERR_TRAVERSAL' });
      expect(err.message).toContain(rel);
      expect(err.message).not.toContain(outer);
    }
    expect(tree(elsewhere)).toEqual(['there.isml']);
    expect(readFileSync(path.join(outer, 'secret.isml'), 'utf8')).toBe(isml({ title: 'Top secret' }));
    expect(readdirSync(outer).sort()).toEqual(['elsewhere', 'media', 'secret.isml']);
    expect(await o.remove('leak.isml')).toBe(false);
  });

  symlinks('a point served before its link was pointed outside the root goes away', async () => {
    const { o, outer, root: media } = onSandbox({ definitionCheckInterval: 0 });
    writeFileSync(path.join(media, 'real.isml'), isml({ title: 'Inside' }));
    writeFileSync(path.join(outer, 'secret.isml'), isml({ title: 'Top secret' }));
    symlinkSync('real.isml', path.join(media, 'ch.isml'));
    const p = (await o.resolve('ch.isml'))!;
    expect(p.settings.title).toBe('Inside');
    rmSync(path.join(media, 'ch.isml'));
    symlinkSync(path.join(outer, 'secret.isml'), path.join(media, 'ch.isml'));
    expect(await o.resolve('ch.isml')).toBeUndefined();
  });

  symlinks('links that stay inside the root are followed, and the root itself may be a link', async () => {
    const { outer, root: media } = sandbox();
    sandboxes.push(outer);
    const linkedRoot = path.join(outer, 'root-link');
    symlinkSync(media, linkedRoot, 'dir');
    const o = createOrigin(linkedRoot, { stateFile: false });
    made.push(o);
    mkdirSync(path.join(media, 'real'));
    symlinkSync(path.join(media, 'real'), path.join(media, 'alias'), 'dir');
    writeFileSync(path.join(media, 'ch1.isml'), isml({ title: 'One' }));
    symlinkSync('ch1.isml', path.join(media, 'same.isml'));

    expect((await o.resolve('same.isml'))?.settings.title).toBe('One');
    expect((await o.write('alias/new/y.isml', { title: 'Y' })).created).toBe(true);
    expect(readDefinition(readFileSync(path.join(media, 'real', 'new', 'y.isml'), 'utf8')).overrides.title).toBe('Y');
    expect((await o.write('ch2.isml', { title: 'Two' })).created).toBe(true);
    expect((await o.list()).map((p) => p.path)).toEqual(['ch1.isml', 'ch2.isml', 'real/new/y.isml', 'same.isml']);
  });
});
