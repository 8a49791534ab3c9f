/**
 * Events that carry media, in order, and failures that stay contained: a publishing point fed the
 * captured ffmpeg push, with listeners that throw or reject (on the point and on the origin, from
 * ingest, from a dropped connection, from the source-lost timer) and stores that throw or reject on
 * every call. Each failure is reported (`failure` event and a counter) and ingest goes on; nothing
 * reaches the process as an uncaught exception or an unhandled rejection.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveSettings } from '../../../lib/definition';
import { SmoothError } from '../../../lib/errors';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { MediaFragment } from '../../../lib/media';
import { LiveSmoothOptions, resolveOptions } from '../../../lib/options';
import { createOrigin } from '../../../lib/origin';
import { PublishingPoint } from '../../../lib/point';
import type { PointEvents } from '../../../lib/point/events';
import { MemoryFragmentStore } from '../../../lib/store/memory';
import type { FragmentStore, FragmentStoreOptions } from '../../../lib/store/types';
import { fixture } from '../../helpers/raw-ingest';
import { TrackSpec, cat, fragment, ftyp, lsmBox, lsmSmil, moov, payload } from '../../helpers/fmp4';
import { isml } from '../../helpers/server';

const F = fixture();
type Failure = PointEvents['failure'][0];

function point(options: LiveSmoothOptions = {}): PublishingPoint {
  return new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false, ...options }));
}

function push(p: PublishingPoint, fragments = F.fragments.length, eos = true) {
  const session = p.openIngest('ch1', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  session.write(F.header);
  for (const f of F.fragments.slice(0, fragments)) session.write(f);
  if (eos) session.write(F.mfra);
  return session;
}

/** Nothing may escape to the process: collected here and asserted empty after each test. */
const escaped: unknown[] = [];
const onEscape = (err: unknown): void => void escaped.push(err);
beforeAll(() => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});
afterAll(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
});
afterEach(async () => {
  jest.useRealTimers();
  // Let rejected Promises be noticed before judging.
  await new Promise((ok) => setImmediate(ok));
  expect(escaped.splice(0)).toEqual([]);
});

describe('events that carry media', () => {
  it('trackHeader (with the init segment) comes before the first fragment of its track, fragments in ingest order', () => {
    const p = point();
    const log: string[] = [];
    const fragments: Array<{ track: string; fragment: MediaFragment }> = [];
    p.on('trackHeader', (e) => {
      expect(e.point).toBe('ch1.isml');
      expect(e.track.init.toString('latin1', 4, 8)).toBe('ftyp');
      log.push(`header ${e.track.key}`);
    });
    p.on('fragment', (e) => {
      log.push(`fragment ${e.track}`);
      fragments.push(e);
    });
    p.on('streamStarted', () => log.push('streamStarted'));
    push(p);
    expect(log.slice(0, 4)).toEqual(['header video/video/100000', 'header video/video/50000', 'header audio/audio/32000', 'streamStarted']);
    expect(fragments).toHaveLength(12);
    for (const key of ['video/video/100000', 'video/video/50000', 'audio/audio/32000']) {
      const times = fragments.filter((f) => f.track === key).map((f) => f.fragment.time);
      expect(times).toEqual([...times].sort((a, b) => (a < b ? -1 : 1)));
    }
    // The stored fragment: its samples and bytes, once; audio's priming clamped in the listing only.
    const audio = fragments.filter((f) => f.track === 'audio/audio/32000').map((f) => f.fragment);
    expect(audio[0]!.time).toBe(0n);
    expect(audio[0]!.presentationTime).toBe(-213_333n);
    expect(audio[0]!.decodeTime).toBe(-213_333n);
    expect(audio[0]!.data.length).toBe(audio[0]!.dataSize);
    expect(p.headers.map((h) => h.key)).toEqual(['video/video/50000', 'video/video/100000', 'audio/audio/32000']);
  });

  it('a fragment event carries what the store holds: the same object in the memory store', () => {
    let store: MemoryFragmentStore | undefined;
    const p = point({
      store: (o) => (store = new MemoryFragmentStore(o)),
    });
    const seen: Array<[string, MediaFragment]> = [];
    p.on('fragment', (e) => seen.push([e.track, e.fragment]));
    push(p);
    for (const [key, f] of seen) expect(store!.get(key, f.time)).toBe(f);
  });
});

describe('a listener that fails', () => {
  it('throwing on every event: reported as failure events and counted; ingest and delivery go on', () => {
    const p = point();
    const failures: Failure[] = [];
    p.on('failure', (e) => failures.push(e));
    for (const name of ['state', 'trackHeader', 'fragment', 'streamStarted', 'streamEnded', 'fragmentTrimmed'] as const) {
      p.on(name, () => {
        throw new Error(`${name} listener broke`);
      });
    }
    const others: string[] = [];
    p.on('fragment', () => others.push('fragment')); // a later listener of the same event still runs
    push(p);
    expect(p.state).toBe('Stopped'); // end of stream was applied
    expect(others).toHaveLength(12);
    expect(p.lookup('video', 100000, [], 30_000_000n).status).toBe('ok');
    expect(failures.length).toBe(p.failures.listener);
    expect(p.failures).toEqual({ listener: expect.any(Number), store: 0 });
    expect(new Set(failures.map((f) => f.event))).toEqual(new Set(['state', 'trackHeader', 'fragment', 'streamStarted']));
    expect(failures[0]).toMatchObject({ point: 'ch1.isml', source: 'listener', message: expect.stringMatching(/listener broke$/) });
  });

  it('returning a Promise that rejects: reported, never an unhandled rejection', async () => {
    const p = point();
    const failures: Failure[] = [];
    p.on('failure', (e) => failures.push(e));
    p.on('fragment', async () => {
      throw new Error('async listener broke');
    });
    push(p, 3, false);
    await new Promise((ok) => setImmediate(ok));
    expect(failures.map((f) => f.message)).toEqual(['async listener broke', 'async listener broke', 'async listener broke']);
    expect(p.failures.listener).toBe(3);
  });

  it('a failure listener that throws itself is counted, not reported again', () => {
    const p = point();
    p.on('failure', () => {
      throw new Error('failure listener broke');
    });
    p.on('streamStarted', () => {
      throw new Error('broke');
    });
    push(p, 0, false);
    expect(p.failures.listener).toBe(2);
  });

  it('from a dropped connection (streamEnded) and from the source-lost timer (state): the point still stops', () => {
    jest.useFakeTimers();
    const p = point({ sourceLostTimeout: 1000 });
    let thrown = 0;
    p.on('streamEnded', () => {
      thrown++;
      throw new Error('streamEnded listener broke');
    });
    p.on('state', (e) => {
      if (e.state !== 'Stopping') return;
      thrown++;
      throw new Error('state listener broke');
    });
    const session = push(p, 6, false);
    session.abort('disconnected');
    jest.advanceTimersByTime(1000);
    expect(p.state).toBe('Stopped');
    expect(thrown).toBe(2);
    expect(p.failures.listener).toBe(2);
  });

  it('a listener may run commands: stopping the point from a fragment event stops its ingest cleanly', () => {
    const p = point();
    let killed = false;
    p.on('fragment', () => {
      if (p.state === 'Started') p.command('stop');
    });
    const session = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    session.onKill = () => (killed = true);
    session.write(Buffer.concat([F.header, ...F.fragments])); // one chunk: the rest of it is not applied
    expect(p.state).toBe('Stopped');
    expect(killed).toBe(true);
    expect(session.closed).toBe(true);
    expect(p.failures).toEqual({ listener: 0, store: 0 });
  });

  it('on the origin: reported on the origin, the point and its ingest go on', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-events-'));
    try {
      writeFileSync(path.join(root, 'ch1.isml'), isml());
      const origin = createOrigin(root, { stateFile: false });
      const failures: Failure[] = [];
      origin.on('failure', (e) => failures.push(e));
      origin.on('fragment', () => {
        throw new Error('origin listener broke');
      });
      const p = (await origin.resolve('ch1.isml'))!;
      push(p);
      expect(p.state).toBe('Stopped');
      expect(origin.failures).toBe(12);
      expect(failures).toHaveLength(12);
      expect(failures[0]).toMatchObject({ point: 'ch1.isml', source: 'listener', event: 'fragment', message: 'origin listener broke' });
      origin.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

/** A memory store whose chosen calls fail: throwing, or answering a Promise that rejects. */
function failingStore(how: 'throw' | 'reject', calls: ReadonlyArray<keyof FragmentStore>): (o: FragmentStoreOptions) => FragmentStore {
  return (o) => {
    const inner = new MemoryFragmentStore(o);
    const fail = (call: string): never => {
      throw new Error(`store ${call} failed`);
    };
    const wrap = <A extends unknown[], R>(call: keyof FragmentStore, fn: (...a: A) => R) =>
      (...a: A): R | Promise<R> => {
        if (!calls.includes(call)) return fn(...a);
        if (how === 'throw') return fail(call);
        return Promise.reject(new Error(`store ${call} failed`));
      };
    return {
      put: wrap('put', (t: string, f: MediaFragment) => inner.put(t, f)),
      get: wrap('get', (t: string, time: bigint) => inner.get(t, time)),
      trim: wrap('trim', (t: string, end: bigint) => inner.trim(t, end)),
      clear: wrap('clear', () => inner.clear()),
      get bytes() {
        return inner.bytes;
      },
    };
  };
}

describe('a store that fails', () => {
  it.each(['throw', 'reject'] as const)('put (%s): every fragment is reported, none listed, ingest goes on to end of stream', async (how) => {
    const p = point({ store: failingStore(how, ['put']) });
    const failures: Failure[] = [];
    const trimmed: string[] = [];
    p.on('failure', (e) => failures.push(e));
    p.on('fragmentTrimmed', (e) => trimmed.push(e.reason));
    push(p);
    await new Promise((ok) => setImmediate(ok));
    expect(p.state).toBe('Stopped');
    expect(failures).toHaveLength(12);
    expect(failures[0]).toMatchObject({ source: 'store', message: 'store put failed' });
    expect(p.failures.store).toBe(12);
    // Nothing the store lost is listed or served.
    expect(p.manifest().body.toString()).not.toMatch(/<c /);
    expect(p.lookup('video', 100000, [], 0n).status).toBe('not-found');
    if (how === 'reject') expect(trimmed).toEqual(Array(12).fill('error'));
  });

  it.each(['throw', 'reject'] as const)('get (%s): the read fails with ERR_STORE (500), reported; the next read works again', async (how) => {
    let failing = true;
    const inner = failingStore(how, ['get']);
    const p = point({
      store: (o) => {
        const s = inner(o);
        const plain = new MemoryFragmentStore(o);
        return {
          put: (t, f) => (s.put(t, f), plain.put(t, f)),
          get: (t, time) => (failing ? s.get(t, time) : plain.get(t, time)),
          trim: (t, end) => plain.trim(t, end),
          clear: () => plain.clear(),
          get bytes() {
            return plain.bytes;
          },
        };
      },
    });
    push(p);
    const found = p.lookup('video', 100000, [], 0n);
    if (found.status !== 'ok') throw new Error(found.status);
    const read = async () => p.smoothFragment(found);
    const err = await read().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SmoothError);
    expect((err as SmoothError).code).toBe('ERR_STORE');
    expect(p.failures.store).toBe(1);
    failing = false;
    expect((await read())?.dataSize).toBeGreaterThan(0);
  });

  it.each(['throw', 'reject'] as const)('trim and clear (%s): reported, the window still moves and the point still shuts down', async (how) => {
    const p = point({ store: failingStore(how, ['trim', 'clear']) });
    p.configure(resolveSettings([{ startOnFirstRequest: true, manifestWindowLength: 1 }]));
    push(p);
    p.command('shutdown');
    await new Promise((ok) => setImmediate(ok));
    expect(p.state).toBe('Idle');
    expect(p.failures.store).toBeGreaterThanOrEqual(2);
  });
});

describe('evictions reach the manifest', () => {
  it('a fragment the byte budget evicts leaves the manifest, whose ETag changes', () => {
    const sizes: number[] = [];
    const p = point({ maxBytesPerPoint: 1 << 20 });
    p.on('fragment', (e) => sizes.push(e.fragment.byteLength));
    push(p, 9, false);
    const before = p.manifest();
    // A store whose budget now holds little: the next fragment evicts the oldest.
    const q = point({ maxBytesPerPoint: Math.max(...sizes) * 3 });
    const trimmed: string[] = [];
    q.on('fragmentTrimmed', (e) => trimmed.push(`${e.track}@${e.time}:${e.reason}`));
    push(q, 9, false);
    expect(trimmed.length).toBeGreaterThan(0);
    expect(trimmed.every((t) => t.endsWith(':bytes'))).toBe(true);
    const m = q.manifest();
    expect(m.body.toString()).not.toBe(before.body.toString());
    const etag = m.etag;
    // One more eviction: the ETag follows the manifest (it is derived from its bytes).
    const session = q.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    session.write(F.header);
    for (const f of F.fragments.slice(9)) session.write(f);
    const after = q.manifest();
    expect(after.etag === etag).toBe(after.body.equals(m.body));
    expect(before.etag).not.toBe(m.etag);
  });
});

describe('a text track of an unknown format in a push', () => {
  it('is left out with an inputRejected event, and the stream\'s media tracks go on', () => {
    const p = point();
    const rejected: string[] = [];
    p.on('inputRejected', (e) => rejected.push(`${e.streamId} ${e.code}: ${e.message}`));
    const tracks: TrackSpec[] = [
      { trackId: 1, kind: 'video', bitrate: 800000, params: { trackName: 'video' } },
      { trackId: 2, kind: 'text', bitrate: 1000, params: { trackName: 'ads', parentTrackName: 'video', FourCC: 'WXYZ', Subtype: 'DATA' } },
    ];
    const session = p.openIngest('s', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    session.write(cat(ftyp(), lsmBox(lsmSmil(tracks)), moov(tracks)));
    session.write(fragment(1, [{ trackId: 2, time: 0, samples: [payload(10, 1)] }]));
    session.write(fragment(2, [{ trackId: 1, time: 0, samples: [payload(100, 2)] }]));
    expect(rejected).toEqual(["s ERR_UNKNOWN_CODEC: track 2: unknown text FourCC 'WXYZ'; the stream's other tracks go on"]);
    expect(p.state).toBe('Started');
    expect(p.tracks.map((t) => t.type)).toEqual(['video']);
    expect(session.closed).toBe(false);
  });
});

