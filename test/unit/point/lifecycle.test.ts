/**
 * The publishing-point state machine (protocol doc §5.3) on a PublishingPoint alone, fed the captured
 * ffmpeg push through its ingest connections: every command in every state (allowed → the transitions,
 * refused → ERR_POINT_STATE and nothing changes), the automatic transitions (first request, first
 * fragment, end of stream, source lost, encoder reconnect), settings that wait for Idle, Error, and the
 * order of the `state` events.
 */
import { SettingsOverrides, resolveSettings } from '../../../lib/definition';
import { SmoothError } from '../../../lib/errors';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { LiveSmoothOptions, resolveOptions } from '../../../lib/options';
import { PointCommand, PointState, PublishingPoint } from '../../../lib/point';
import type { IngestSession } from '../../../lib/point/session';
import { smoothErrorOf as thrown } from '../../helpers/errors';
import { fragment, ingestHeader, mfra, payload } from '../../helpers/fmp4';
import { box, fixture, parseManifest } from '../../helpers/raw-ingest';

const F = fixture();
/** Fragment start times of the fixture per track name, as published (audio's -213333 starts at 0). */
const VIDEO_TIMES = [0n, 10_000_000n, 20_000_000n, 30_000_000n];
const AUDIO_TIMES = [0n, 10_026_667n, 20_053_333n, 30_080_000n];
const LEVELS: Array<[string, number, bigint[]]> = [
  ['video', 100000, VIDEO_TIMES],
  ['video', 50000, VIDEO_TIMES],
  ['audio', 32000, AUDIO_TIMES],
];

interface Harness {
  p: PublishingPoint;
  /** Every `state` event, in order. */
  events: Array<{ state: PointState; reason: string | undefined }>;
  /** The states of the events since the last {@link Harness.clear}. */
  states(): PointState[];
  clear(): void;
}

function harness(settings: SettingsOverrides = {}, options: LiveSmoothOptions = {}): Harness {
  const p = new PublishingPoint('events/ch1.isml', resolveSettings([settings]), resolveOptions({ stateFile: false, ...options }));
  const events: Harness['events'] = [];
  p.on('state', (e) => {
    expect(e.point).toBe('events/ch1.isml');
    events.push({ state: e.state, reason: e.reason });
  });
  return { p, events, states: () => events.map((e) => e.state), clear: () => (events.length = 0) };
}

/** An encoder POST attached to `p`; records whether the point killed it. */
interface Encoder {
  conn: IngestSession;
  killed: boolean;
}

function encoder(p: PublishingPoint, streamId = 'ch1', remoteAddress = '10.0.0.7'): Encoder {
  const conn = p.openIngest(streamId, remoteAddress, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  const e: Encoder = { conn, killed: false };
  conn.onKill = () => (e.killed = true);
  return e;
}

/** Writes the fixture header and the first `n` fragments (3 per second of media: 2 video + 1 audio). */
function feed(e: Encoder, n: number, header = true): void {
  if (header) e.conn.write(F.header);
  for (const f of F.fragments.slice(0, n)) e.conn.write(f);
}

/** Which fragments of each quality level a lookup finds. */
function available(p: PublishingPoint): string[] {
  return LEVELS.flatMap(([name, bitrate, times]) =>
    times.filter((t) => p.lookup(name, bitrate, [], t).status === 'ok').map((t) => `${name}/${bitrate}@${t}`),
  );
}

const ALL = LEVELS.flatMap(([name, bitrate, times]) => times.map((t) => `${name}/${bitrate}@${t}`));

/** Fragment counts per StreamIndex of the manifest. */
function listed(p: PublishingPoint): Array<[string, number]> {
  return parseManifest(p.manifest().body.toString('utf8')).streams.map((s) => [s.name, s.fragments.length]);
}

/** Brings a fresh point to `state` by the ordinary path; returns the encoder used, if any. */
function reach(h: Harness, state: 'Idle' | 'Starting' | 'Started' | 'Stopped' | 'Error'): Encoder | undefined {
  let e: Encoder | undefined;
  if (state === 'Starting') h.p.command('start');
  if (state === 'Started' || state === 'Stopped') {
    h.p.command('start');
    e = encoder(h.p);
    feed(e, 6);
  }
  if (state === 'Stopped') h.p.command('stop');
  if (state === 'Error') h.p.fail('definition is broken');
  expect(h.p.state).toBe(state);
  h.clear();
  return e;
}

afterEach(() => {
  jest.useRealTimers();
});

describe('commands in every state', () => {
  type Outcome = PointState[] | 'refused';
  const table: Record<'Idle' | 'Starting' | 'Started' | 'Stopped' | 'Error', Record<PointCommand, Outcome>> = {
    Idle: { start: ['Starting'], stop: 'refused', shutdown: 'refused' },
    Starting: { start: 'refused', stop: ['Stopping', 'Stopped'], shutdown: ['ShuttingDown', 'Idle'] },
    Started: { start: 'refused', stop: ['Stopping', 'Stopped'], shutdown: ['ShuttingDown', 'Idle'] },
    Stopped: { start: 'refused', stop: 'refused', shutdown: ['ShuttingDown', 'Idle'] },
    // The definition is still malformed, so the point drops its window and returns to Error, not Idle.
    Error: { start: 'refused', stop: 'refused', shutdown: ['ShuttingDown', 'Error'] },
  };
  const cases = Object.entries(table).flatMap(([state, commands]) =>
    Object.entries(commands).map(([command, outcome]) => [state, command, outcome] as [keyof typeof table, PointCommand, Outcome]),
  );

  it.each(cases)('%s + %s → %p', (state, command, outcome) => {
    const h = harness({ startOnFirstRequest: false });
    reach(h, state);
    if (outcome === 'refused') {
      const err = thrown(() => h.p.command(command));
      expect(err.code).toBe('ERR_POINT_STATE');
      expect(err.message).toContain(`cannot ${command}`);
      expect(err.message).toContain(state);
      // The refusal says why / what to do instead, after the state.
      expect(err.message).toMatch(new RegExp(`${state}: \\S`));
      expect(h.p.state).toBe(state);
      expect(h.states()).toEqual([]);
    } else {
      h.p.command(command);
      expect(h.states()).toEqual(outcome);
      expect(h.p.state).toBe(outcome[outcome.length - 1]);
    }
  });

  it('start on a Stopped point says to shut it down first; stop on a Stopped point says it is already stopped', () => {
    const h = harness();
    reach(h, 'Stopped');
    expect(thrown(() => h.p.command('start')).message).toMatch(/shut it down first/);
    expect(thrown(() => h.p.command('stop')).message).toMatch(/already stopped/);
  });

  it('every command is refused in the transient states Stopping and ShuttingDown (and encoders are told to retry)', () => {
    const h = harness();
    const seen: Record<string, Record<string, string>> = {};
    h.p.on('state', (e) => {
      if (e.state !== 'Stopping' && e.state !== 'ShuttingDown') return;
      const row: Record<string, string> = {};
      for (const c of ['start', 'stop', 'shutdown'] as const) {
        try {
          h.p.command(c);
          row[c] = 'accepted';
        } catch (err) {
          row[c] = (err as SmoothError).code;
        }
      }
      try {
        h.p.checkIngest();
        row.encoder = 'accepted';
      } catch (err) {
        row.encoder = (err as SmoothError).message;
      }
      row.serving = String(h.p.serving);
      seen[e.state] = row;
    });
    reach(h, 'Started');
    h.p.command('stop');
    h.p.command('shutdown');
    expect(seen).toEqual({
      Stopping: { start: 'ERR_POINT_STATE', stop: 'ERR_POINT_STATE', shutdown: 'ERR_POINT_STATE', encoder: expect.stringMatching(/Stopping: try again/), serving: 'true' },
      ShuttingDown: { start: 'ERR_POINT_STATE', stop: 'ERR_POINT_STATE', shutdown: 'ERR_POINT_STATE', encoder: expect.stringMatching(/ShuttingDown: try again/), serving: 'false' },
    });
    expect(h.states()).toEqual(['Stopping', 'Stopped', 'ShuttingDown', 'Idle']);
  });

  it('a full lifecycle emits every state change once, in order, with its reason', () => {
    const h = harness({ startOnFirstRequest: true });
    const e = encoder(h.p);
    e.conn.write(F.all); // header, every fragment, EOS
    e.conn.finish();
    h.p.command('shutdown');
    expect(h.events).toEqual([
      { state: 'Starting', reason: 'encoder ch1' },
      { state: 'Started', reason: 'first fragment' },
      { state: 'Stopping', reason: 'end of stream' },
      { state: 'Stopped', reason: 'end of stream' },
      { state: 'ShuttingDown', reason: 'shutdown command' },
      { state: 'Idle', reason: 'shutdown command' },
    ]);
  });
});

describe('Idle', () => {
  it('is where a new point starts: no tracks, nothing served', () => {
    const { p } = harness();
    expect(p.state).toBe('Idle');
    expect(p.serving).toBe(false);
    expect(p.tracks).toEqual([]);
    expect(p.streams).toEqual([]);
    expect(p.error).toBeUndefined();
  });

  it('without startOnFirstRequest refuses encoders (checkIngest and openIngest throw ERR_POINT_STATE) and client requests do not start it', () => {
    const h = harness({ startOnFirstRequest: false });
    const probe = thrown(() => h.p.checkIngest());
    expect(probe.code).toBe('ERR_POINT_STATE');
    expect(probe.message).toMatch(/Idle: start it, or set startOnFirstRequest/);
    expect(thrown(() => encoder(h.p)).code).toBe('ERR_POINT_STATE');
    h.p.clientRequest();
    expect(h.p.state).toBe('Idle');
    expect(h.states()).toEqual([]);
  });

  it('with startOnFirstRequest accepts an encoder, but starts only once its header is accepted', () => {
    const h = harness({ startOnFirstRequest: true });
    expect(() => h.p.checkIngest()).not.toThrow();
    const e = encoder(h.p);
    expect(h.p.state).toBe('Idle');
    e.conn.write(F.header.subarray(0, 100)); // part of the header
    expect(h.p.state).toBe('Idle');
    e.conn.write(F.header.subarray(100));
    expect(h.states()).toEqual(['Starting']);
    expect(h.events[0]!.reason).toBe('encoder ch1');
    expect(h.p.streams).toEqual([{ id: 'ch1', state: 'connected', remoteAddress: '10.0.0.7', connections: 1 }]);
  });

  it('with startOnFirstRequest, a garbage POST leaves it Idle', () => {
    const h = harness({ startOnFirstRequest: true });
    const e = encoder(h.p);
    const err = thrown(() => e.conn.write(box('junk', Buffer.from('not an encoder'))));
    expect(err.code).toBe('ERR_BAD_HEADER');
    e.conn.abort('error', err);
    expect(h.p.state).toBe('Idle');
    expect(h.states()).toEqual([]);
    expect(h.p.streams).toEqual([]);
    // A header-only POST that ends is not garbage: the point starts.
    const ok = encoder(h.p);
    ok.conn.write(F.header);
    expect(h.p.state).toBe('Starting');
  });

  it('with startOnFirstRequest, a client request starts it (content still 404 until Started)', () => {
    const h = harness({ startOnFirstRequest: true });
    h.p.clientRequest();
    expect(h.events).toEqual([{ state: 'Starting', reason: 'first client request' }]);
    expect(h.p.serving).toBe(false);
    h.p.clientRequest(); // no second start
    expect(h.states()).toEqual(['Starting']);
  });

  it('client requests never change a point that is not Idle', () => {
    for (const state of ['Starting', 'Started', 'Stopped', 'Error'] as const) {
      const h = harness({ startOnFirstRequest: true });
      reach(h, state);
      h.p.clientRequest();
      expect([state, h.p.state, h.states()]).toEqual([state, state, []]);
    }
  });
});

describe('Starting and Started', () => {
  it('Starting → Started on the first fragment, not on the header', () => {
    const h = harness({ startOnFirstRequest: false });
    h.p.command('start');
    expect(h.p.serving).toBe(false);
    const e = encoder(h.p);
    e.conn.write(F.header);
    expect(h.p.state).toBe('Starting');
    e.conn.write(F.fragments[0]!);
    expect(h.states()).toEqual(['Starting', 'Started']);
    expect(h.p.serving).toBe(true);
  });

  it('lists a fragment once lookaheadChunks successors exist but serves it at once; later times are "not yet" (412), unknown ones 404', () => {
    const h = harness();
    reach(h, 'Started'); // 2 fragments per track ingested, lookahead 2: none listed, every one served
    expect(listed(h.p)).toEqual([['video', 0], ['audio', 0]]);
    expect(available(h.p)).toEqual(ALL.filter((k) => /@(0|10000000|10026667)$/.test(k)));
    // Its tfrf holds the successors there are so far: not complete yet.
    expect(h.p.lookup('video', 100000, [], 0n)).toMatchObject({ status: 'ok', time: 0n, tfrf: 1, complete: false });
    expect(h.p.lookup('video', 100000, [], 10_000_000n)).toMatchObject({ status: 'ok', time: 10_000_000n, tfrf: 0, complete: false });
    expect(h.p.lookup('video', 100000, [], 20_000_000n)).toEqual({ status: 'not-yet' }); // after the newest ingested
    expect(h.p.lookup('video', 100000, [], 5n).status).toBe('not-found'); // not a fragment start
    expect(h.p.lookup('video', 1, [], 0n).status).toBe('not-found');
    expect(h.p.lookup('text', 1, [], 0n).status).toBe('not-found');
  });

  describe('a bitrate whose first fragment comes late (lookahead 1)', () => {
    const S = 10_000_000n;
    /** The fixture's fragment of `second` for video 100k (0), video 50k (1) or audio (2). */
    const at = (second: number, track: 0 | 1 | 2): Buffer => F.fragments[3 * second + track]!;
    const snapshotVideo = (p: PublishingPoint): bigint[] => p.snapshot().streams.find((x) => x.name === 'video')!.fragments.map((f) => f.time);
    const manifestVideo = (p: PublishingPoint): bigint[] =>
      parseManifest(p.manifest().body.toString('utf8')).streams.find((x) => x.name === 'video')!.fragments.map((f) => f.t);
    /** 0-2 s of video 100k and audio; video 50k has nothing yet. */
    function start(): Harness & { e: Encoder } {
      const h = harness({ startOnFirstRequest: true, lookaheadChunks: 1 });
      const e = encoder(h.p);
      e.conn.write(F.header);
      for (const second of [0, 1, 2]) {
        e.conn.write(at(second, 0));
        e.conn.write(at(second, 2));
      }
      // A bitrate with nothing does not hold the listing back (it would stay empty): it is 412 there.
      expect(manifestVideo(h.p)).toEqual([0n, S]);
      expect(h.p.lookup('video', 50000, [], 0n)).toEqual({ status: 'not-yet' });
      return { ...h, e };
    }

    it('caps the listed edge at its newest fragment until it publishes: every listed time is served at every bitrate', () => {
      const { p, e } = start();
      e.conn.write(at(0, 1)); // its first fragment, held back
      expect(snapshotVideo(p)).toEqual([0n]); // 1 s, listed a moment ago, is not any more
      e.conn.write(at(3, 0)); // 100k publishes 2 s: the manifest is rendered again
      expect(manifestVideo(p)).toEqual([0n]);
      const served = (): void => {
        for (const t of manifestVideo(p)) {
          for (const bitrate of [100000, 50000]) expect([bitrate, String(t), p.lookup('video', bitrate, [], t).status]).toEqual([bitrate, String(t), 'ok']);
        }
      };
      served();
      e.conn.write(at(1, 1)); // 50k publishes 0 s
      expect(manifestVideo(p)).toEqual([0n]);
      e.conn.write(at(2, 1)); // 1 s
      expect(manifestVideo(p)).toEqual([0n, S]);
      served();
      e.conn.write(at(3, 1)); // 2 s: level with 100k
      expect(manifestVideo(p)).toEqual([0n, S, 2n * S]);
      served();
    });

    // Known gap: the rendered manifest is cached until a fragment is published (PointContent.add
    // touches only then), but the listing now also depends on a held-back fragment's arrival. Flip to
    // `it` once the first fragment of a bitrate invalidates the manifest.
    it('the rendered manifest follows at once when its first fragment arrives', () => {
      const { p, e } = start();
      e.conn.write(at(0, 1));
      expect(snapshotVideo(p)).toEqual([0n]);
      // Still [0, 1 s] (rendered before the 50k fragment came): 50k answers 412 at 1 s.
      expect(manifestVideo(p)).toEqual([0n]);
      for (const t of manifestVideo(p)) expect([String(t), p.lookup('video', 50000, [], t).status]).toEqual([String(t), 'ok']);
    });
  });

  it('counts fragments, bytes, requests, 404s and 412s per track, and the stream’s connection', () => {
    const h = harness();
    reach(h, 'Started');
    const e = encoder(h.p, 'ch1', '10.0.0.8');
    feed(e, 12); // a second POST of the same stream: fragments 0-5 again are dropped (first copy wins); 6-11 are new
    h.p.lookup('video', 100000, [], 0n); // ok (0 and 10000000 are listed, 2 held back)
    h.p.lookup('video', 100000, [], 5n); // inside the window but not a fragment start: 404
    h.p.lookup('video', 100000, [], 30_000_000n); // held back (not listed yet) but ingested: ok
    h.p.lookup('video', 100000, [], 40_000_000n); // after the newest ingested: 412
    h.p.lookup('video', 100000, [], 90_000_000n); // after the newest ingested: 412
    const v = h.p.trackStats.find((t) => t.key === 'video/video/100000')!;
    expect(v).toMatchObject({ fragments: 4, requests: 5, notFound: 1, notYetAvailable: 2, lastFragmentTime: 30_000_000n, lastFragmentDuration: 10_000_000n });
    const bytes = F.fragments.filter((_, i) => i % 3 === 0).reduce((sum, f) => sum + f.length, 0);
    expect(v.bytes).toBeLessThan(bytes); // mdat payload bytes (no boxes) of the 4 fragments
    expect(v.bytes).toBeGreaterThan(bytes * 0.9);
    expect(v.bytes).toBeGreaterThan(0);
    expect(v.incomingBitrate).toBeGreaterThan(0);
    expect(h.p.streams).toEqual([{ id: 'ch1', state: 'connected', remoteAddress: '10.0.0.8', connections: 2 }]);
  });
});

describe('stopping', () => {
  it('end of stream on every stream → Stopping → Stopped, with the held-back tail published', () => {
    const h = harness({ startOnFirstRequest: true });
    const e = encoder(h.p);
    e.conn.write(F.header);
    for (const f of F.fragments) e.conn.write(f);
    expect(listed(h.p)).toEqual([['video', 2], ['audio', 2]]); // 2 of 4 per track listed
    expect(available(h.p)).toEqual(ALL); // and every one served
    expect(h.p.lookup('video', 100000, [], 30_000_000n)).toMatchObject({ status: 'ok', tfrf: 0, complete: false });
    e.conn.write(F.mfra);
    expect(h.states()).toEqual(['Starting', 'Started', 'Stopping', 'Stopped']);
    expect(available(h.p)).toEqual(ALL);
    expect(listed(h.p)).toEqual([['video', 4], ['audio', 4]]);
    // The last fragment is final now: nothing will follow it.
    expect(h.p.lookup('video', 100000, [], 30_000_000n)).toMatchObject({ status: 'ok', tfrf: 0, complete: true });
    e.conn.finish();
    expect(e.killed).toBe(false); // an EOS POST finishes normally
    expect(h.p.streams).toEqual([{ id: 'ch1', state: 'ended', remoteAddress: '10.0.0.7', connections: 0 }]);
  });

  it('stays Started while another stream is still live; stops when the last one ends', () => {
    const h = harness({ startOnFirstRequest: true });
    const a = encoder(h.p, 'a');
    const b = encoder(h.p, 'b');
    b.conn.write(F.header); // a redundant encoder: same tracks
    a.conn.write(F.all);
    a.conn.finish();
    expect(h.p.state).toBe('Started');
    expect(h.p.streams.map((s) => [s.id, s.state])).toEqual([['b', 'connected'], ['a', 'ended']]);
    b.conn.write(F.mfra);
    expect(h.p.state).toBe('Stopped');
    expect(available(h.p)).toEqual(ALL);
  });

  it('a stream that ended while another keeps the point Started: its short tail is served but not complete; it grows if the stream comes back; complete once the point stops', () => {
    const h = harness({ startOnFirstRequest: true });
    const D = 10_000_000n;
    /** A track on a stream of its own (built in code), and its `i`-th fragment (start `i` × D). */
    const own = (kind: 'video' | 'audio', bitrate: number) => ({
      header: ingestHeader([{ trackId: 1, kind, bitrate }]),
      at: (i: number): Buffer => fragment(i + 1, [{ trackId: 1, time: BigInt(i) * D, duration: D, samples: [payload(32, bitrate + i)] }]),
    });
    const V = own('video', 100000);
    const A = own('audio', 32000);
    const v = encoder(h.p, 'v');
    v.conn.write(V.header);
    for (const i of [0, 1]) v.conn.write(V.at(i));
    const a = encoder(h.p, 'a');
    a.conn.write(A.header);
    for (const i of [0, 1, 2]) a.conn.write(A.at(i));
    v.conn.write(mfra());
    v.conn.finish();
    expect(h.p.state).toBe('Started');
    expect(h.p.streams.map((x) => [x.id, x.state])).toEqual([['v', 'ended'], ['a', 'connected']]);
    // Its tail is listed (nothing follows it now), but the point is live: the stream may come back.
    expect(listed(h.p)).toEqual([['video', 2], ['audio', 1]]);
    expect(h.p.lookup('video', 100000, [], 0n)).toMatchObject({ status: 'ok', tfrf: 1, complete: false });
    expect(h.p.lookup('video', 100000, [], D)).toMatchObject({ status: 'ok', tfrf: 0, complete: false });
    expect(h.p.lookup('video', 100000, [], 2n * D)).toEqual({ status: 'not-yet' });

    const again = encoder(h.p, 'v');
    again.conn.write(V.header);
    again.conn.write(V.at(2));
    expect(h.p.lookup('video', 100000, [], 0n)).toMatchObject({ status: 'ok', tfrf: 2, complete: true });
    expect(h.p.lookup('video', 100000, [], D)).toMatchObject({ status: 'ok', tfrf: 1, complete: false });
    expect(h.p.lookup('video', 100000, [], 2n * D)).toMatchObject({ status: 'ok', tfrf: 0, complete: false });

    again.conn.write(mfra());
    again.conn.finish();
    expect(h.p.state).toBe('Started'); // the audio stream is still live
    expect(h.p.lookup('video', 100000, [], 2n * D)).toMatchObject({ status: 'ok', tfrf: 0, complete: false });
    a.conn.write(mfra());
    expect(h.p.state).toBe('Stopped');
    expect(h.p.lookup('video', 100000, [], D)).toMatchObject({ status: 'ok', tfrf: 1, complete: true });
    expect(h.p.lookup('video', 100000, [], 2n * D)).toMatchObject({ status: 'ok', tfrf: 0, complete: true });
    expect(h.p.lookup('audio', 32000, [], D)).toMatchObject({ status: 'ok', tfrf: 1, complete: true });
    expect(h.p.lookup('video', 100000, [], 3n * D).status).toBe('not-found');
  });

  it('the stop command disconnects encoders, publishes the tail and keeps serving the DVR window', () => {
    const h = harness();
    const e = reach(h, 'Started')!;
    h.p.command('stop');
    expect(h.events).toEqual([
      { state: 'Stopping', reason: 'stop command' },
      { state: 'Stopped', reason: 'stop command' },
    ]);
    expect(e.killed).toBe(true);
    expect(e.conn.closed).toBe(true);
    expect(h.p.serving).toBe(true);
    expect(available(h.p)).toEqual(ALL.filter((k) => /@(0|10000000|10026667)$/.test(k)));
    // The stop made the tail final: its short tfrf will not grow any more.
    expect(h.p.lookup('video', 100000, [], 10_000_000n)).toMatchObject({ status: 'ok', tfrf: 0, complete: true });
    // Nothing more will come: after the end is 404, not 412.
    expect(h.p.lookup('video', 100000, [], 20_000_000n).status).toBe('not-found');
    expect(listed(h.p)).toEqual([['video', 2], ['audio', 2]]);
    // Writes on the killed connection are ignored.
    e.conn.write(F.fragments[6]!);
    expect(h.p.trackStats.find((t) => t.key === 'video/video/100000')!.fragments).toBe(2);
    expect(h.p.streams.map((s) => s.state)).toEqual(['ended']);
  });

  it('all encoders disconnected for sourceLostTimeout → Stopped (source lost), DVR kept', () => {
    jest.useFakeTimers();
    const h = harness({}, { sourceLostTimeout: 5000 });
    const e = reach(h, 'Started')!;
    e.conn.abort('disconnected');
    expect(h.p.streams.map((s) => s.state)).toEqual(['disconnected']);
    jest.advanceTimersByTime(4999);
    expect(h.p.state).toBe('Started');
    jest.advanceTimersByTime(1);
    expect(h.events).toEqual([
      { state: 'Stopping', reason: 'source lost' },
      { state: 'Stopped', reason: 'source lost' },
    ]);
    expect(available(h.p).length).toBeGreaterThan(0);
  });

  it('a POST that ends without EOS counts as a disconnect too; a reconnect within the timeout keeps the point Started', () => {
    jest.useFakeTimers();
    const h = harness({}, { sourceLostTimeout: 5000 });
    const e = reach(h, 'Started')!;
    e.conn.finish(); // body ended without mfra
    jest.advanceTimersByTime(3000);
    const again = encoder(h.p);
    feed(again, 9);
    jest.advanceTimersByTime(10_000);
    expect(h.p.state).toBe('Started');
    expect(h.states()).toEqual([]);
    // It continued the same timeline.
    expect(h.p.trackStats.find((t) => t.key === 'video/video/100000')!.lastFragmentTime).toBe(20_000_000n);
  });

  it('a Starting point whose only encoder left also stops after sourceLostTimeout; 0 waits forever', () => {
    jest.useFakeTimers();
    const h = harness({ startOnFirstRequest: true }, { sourceLostTimeout: 1000 });
    const e = encoder(h.p);
    e.conn.write(F.header);
    e.conn.abort('disconnected');
    jest.advanceTimersByTime(1000);
    expect(h.states()).toEqual(['Starting', 'Stopping', 'Stopped']);

    const forever = harness({}, { sourceLostTimeout: 0 });
    const f = reach(forever, 'Started')!;
    f.conn.abort('disconnected');
    jest.advanceTimersByTime(24 * 3600 * 1000);
    expect(forever.p.state).toBe('Started');
  });
});

describe('Stopped', () => {
  it('refuses encoders without restartOnEncoderReconnect, and keeps serving', () => {
    const h = harness({ startOnFirstRequest: true });
    reach(h, 'Stopped');
    const err = thrown(() => h.p.checkIngest());
    expect(err.code).toBe('ERR_POINT_STATE');
    expect(err.message).toMatch(/Stopped: shut it down first, or set restartOnEncoderReconnect/);
    expect(thrown(() => encoder(h.p)).code).toBe('ERR_POINT_STATE');
    expect(h.p.state).toBe('Stopped');
    expect(h.p.serving).toBe(true);
  });

  it('with restartOnEncoderReconnect, a new encoder shuts the point down and starts a fresh session', () => {
    const h = harness({ startOnFirstRequest: true, restartOnEncoderReconnect: true });
    reach(h, 'Stopped');
    const oldEtag = h.p.manifest().etag;
    expect(available(h.p).length).toBeGreaterThan(0);
    const e = encoder(h.p, 'next', '10.0.0.9');
    expect(h.p.state).toBe('Stopped'); // nothing happens before its header
    e.conn.write(F.header);
    expect(h.events).toEqual([
      { state: 'ShuttingDown', reason: 'encoder reconnected (restartOnEncoderReconnect)' },
      { state: 'Idle', reason: 'encoder reconnected (restartOnEncoderReconnect)' },
      { state: 'Starting', reason: 'encoder next' },
    ]);
    // The old window is gone: a fresh session with only the new stream.
    expect(h.p.trackStats.every((t) => t.fragments === 0 && t.requests === 0)).toBe(true);
    expect(available(h.p)).toEqual([]);
    expect(listed(h.p)).toEqual([['video', 0], ['audio', 0]]);
    expect(h.p.manifest().etag).not.toBe(oldEtag);
    expect(h.p.streams).toEqual([{ id: 'next', state: 'connected', remoteAddress: '10.0.0.9', connections: 1 }]);
    expect(e.killed).toBe(false);
    e.conn.write(F.fragments[0]!);
    expect(h.p.state).toBe('Started');
  });

  it('with restartOnEncoderReconnect, every POST of the reconnecting encoder joins the fresh session', () => {
    // An encoder that sends one POST per track opens them together: the second must not be killed by
    // the restart the first one triggers.
    const h = harness({ startOnFirstRequest: true, restartOnEncoderReconnect: true });
    reach(h, 'Stopped');
    const video = encoder(h.p, 'video');
    const audio = encoder(h.p, 'audio');
    video.conn.write(F.header);
    expect(h.p.state).toBe('Starting');
    expect(audio.killed).toBe(false);
    audio.conn.write(F.header);
    expect(h.p.streams.map((s) => [s.id, s.state])).toEqual([['video', 'connected'], ['audio', 'connected']]);
  });

  it('with restartOnEncoderReconnect, a garbage POST leaves it Stopped with its DVR window', () => {
    const h = harness({ startOnFirstRequest: true, restartOnEncoderReconnect: true });
    reach(h, 'Stopped');
    const before = available(h.p);
    const e = encoder(h.p);
    const err = thrown(() => e.conn.write(Buffer.alloc(64, 0x41)));
    e.conn.abort('error', err);
    expect(h.p.state).toBe('Stopped');
    expect(h.states()).toEqual([]);
    expect(available(h.p)).toEqual(before);
  });
});

describe('shutdown', () => {
  it.each(['Starting', 'Started', 'Stopped'] as const)('from %s drops the live window and returns to Idle', (state) => {
    const h = harness();
    const e = reach(h, state);
    h.p.command('shutdown');
    expect(h.states()).toEqual(['ShuttingDown', 'Idle']);
    if (e && state === 'Started') expect(e.killed).toBe(true);
    expect(h.p.serving).toBe(false);
    expect(h.p.tracks).toEqual([]);
    expect(h.p.streams).toEqual([]);
    expect(h.p.bytes).toBe(0);
    expect(h.p.lookup('video', 100000, [], 0n).status).toBe('not-found');
    expect(listed(h.p)).toEqual([]);
  });

  it('a shut-down point can start again and takes a new session', () => {
    const h = harness({ startOnFirstRequest: false });
    reach(h, 'Stopped');
    h.p.command('shutdown');
    h.p.command('start');
    const e = encoder(h.p);
    e.conn.write(F.all);
    expect(h.states()).toEqual(['ShuttingDown', 'Idle', 'Starting', 'Started', 'Stopping', 'Stopped']);
    expect(available(h.p)).toEqual(ALL);
  });
});

describe('settings', () => {
  it('apply at once while Idle', () => {
    const h = harness();
    h.p.configure(resolveSettings([{ lookaheadChunks: 5, title: 'New' }]));
    expect(h.p.settings).toMatchObject({ lookaheadChunks: 5, title: 'New' });
    expect(h.p.pendingSettings).toBeUndefined();
    expect(h.states()).toEqual([]);
  });

  it('wait while the point is busy (Started, then Stopped) and apply when it reaches Idle', () => {
    const h = harness({ lookaheadChunks: 2 });
    reach(h, 'Started');
    const next = resolveSettings([{ lookaheadChunks: 0, manifestWindowLength: 60 }]);
    h.p.configure(next);
    expect(h.p.settings.lookaheadChunks).toBe(2);
    expect(h.p.pendingSettings).toBe(next);
    expect(h.p.manifest().body.toString()).toContain('LookAheadFragmentCount="2"');
    h.p.command('stop');
    expect(h.p.settings.lookaheadChunks).toBe(2);
    expect(h.p.pendingSettings).toBe(next);
    h.p.command('shutdown');
    expect(h.p.settings).toBe(next);
    expect(h.p.pendingSettings).toBeUndefined();
    expect(h.p.manifest().body.toString()).toContain('DVRWindowLength="600000000"');
  });

  it('waiting settings apply when restartOnEncoderReconnect shuts the point down, before the new session starts', () => {
    const h = harness({ startOnFirstRequest: true, restartOnEncoderReconnect: true, lookaheadChunks: 2 });
    reach(h, 'Stopped');
    h.p.configure(resolveSettings([{ startOnFirstRequest: true, restartOnEncoderReconnect: true, lookaheadChunks: 0 }]));
    const e = encoder(h.p);
    feed(e, 3);
    expect(h.p.state).toBe('Started');
    expect(h.p.settings.lookaheadChunks).toBe(0);
    expect(available(h.p)).toEqual(['video/100000@0', 'video/50000@0', 'audio/32000@0']);
    expect(listed(h.p)).toEqual([['video', 1], ['audio', 1]]); // no hold-back now
  });

  it('the last configuration while busy wins', () => {
    const h = harness();
    reach(h, 'Starting');
    h.p.configure(resolveSettings([{ lookaheadChunks: 1 }]));
    h.p.configure(resolveSettings([{ lookaheadChunks: 3 }]));
    h.p.command('shutdown');
    expect(h.p.settings.lookaheadChunks).toBe(3);
  });
});

describe('Error', () => {
  it('fail() puts any point in Error with the reason, disconnects encoders and refuses new ones', () => {
    const h = harness({ startOnFirstRequest: true });
    const e = reach(h, 'Started')!;
    h.p.fail('sourceType Pull is not supported yet');
    expect(h.events).toEqual([{ state: 'Error', reason: 'sourceType Pull is not supported yet' }]);
    expect(h.p.error).toBe('sourceType Pull is not supported yet');
    expect(e.killed).toBe(true);
    expect(h.p.serving).toBe(false);
    const err = thrown(() => h.p.checkIngest());
    expect(err.code).toBe('ERR_POINT_STATE');
    expect(err.message).toContain('sourceType Pull is not supported yet');
  });

  it('shutdown drops the window but keeps Error while the definition is still malformed', () => {
    const h = harness();
    reach(h, 'Started');
    h.p.fail('broken');
    h.p.command('shutdown');
    expect(h.states()).toEqual(['Error', 'ShuttingDown', 'Error']);
    expect(h.p.tracks).toEqual([]);
    expect(h.p.error).toBe('broken');
    expect(() => h.p.checkIngest()).toThrow(expect.objectContaining({ code: 'ERR_POINT_STATE' }));
  });

  it('a fixed definition (configure) ends the Error: the point returns to Idle with the new settings', () => {
    const h = harness();
    h.p.fail('broken');
    h.clear();
    h.p.configure(resolveSettings([{ title: 'fixed' }]));
    expect(h.states()).toEqual(['ShuttingDown', 'Idle']);
    expect(h.p.error).toBeUndefined();
    expect(h.p.settings.title).toBe('fixed');
  });
});

describe('restore', () => {
  it.each<[PointState, PointState]>([
    ['Started', 'Starting'],
    ['Starting', 'Starting'],
    ['Stopped', 'Idle'],
    ['Idle', 'Idle'],
    ['Error', 'Idle'],
  ])('a point remembered %s comes back %s', (saved, now) => {
    const h = harness({ startOnFirstRequest: false });
    h.p.restore(saved);
    expect(h.p.state).toBe(now);
    if (now === 'Starting') {
      expect(h.events).toEqual([{ state: 'Starting', reason: 'restored after restart' }]);
      // Waiting for its encoders: they are accepted even without startOnFirstRequest.
      expect(() => h.p.checkIngest()).not.toThrow();
    }
  });

  it('does not touch a point that is already busy', () => {
    const h = harness();
    reach(h, 'Stopped');
    h.p.restore('Started');
    expect(h.p.state).toBe('Stopped');
  });
});
