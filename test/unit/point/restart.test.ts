/**
 * Encoders that go back in time, on a PublishingPoint alone fed the captured ffmpeg push (two video
 * bitrates + AAC, 1 s fragments, 4 s a round): a reconnect's resend is dropped as duplicates; a
 * restarted encoder continues the timeline shifted (default), is refused, or starts a fresh session
 * (`encoderRestart`); a redundant encoder that fell behind is dropped and then refused. Every case is
 * counted, evented and shown in the manifest. The clock is injected: the gap a restart leaves is the
 * wall time the encoder was away.
 */
import { EncoderRestart, resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import type { PointEvents } from '../../../lib/point/events';
import { RESEND_FRAGMENTS, restartShift, shiftIn, type ShiftTrack } from '../../../lib/point/restart';
import { sharedLimits } from '../../../lib/point/limits';
import type { IngestSession } from '../../../lib/point/session';
import { TrackTimeline } from '../../../lib/point/timeline';
import { smoothErrorOf } from '../../helpers/errors';
import { fragment, ingestHeader, payload } from '../../helpers/fmp4';
import { fixture, fragmentsOfRound, headerWithLsm, parseManifest, retime } from '../../helpers/raw-ingest';

const F = fixture();
const SECOND = 10_000_000n;
/** Fragments per round of the fixture: video 100k, video 50k, audio; four times. */
const PER_ROUND = 12;

interface Harness {
  p: PublishingPoint;
  /** The injected clock, ms. */
  clock: { now: number };
  events: { [K in keyof PointEvents]?: Array<PointEvents[K][0]> };
  open(streamId?: string): IngestSession;
  /** Writes round `r` of the fixture (4 s of media, shifted by r × 4 s), one second of clock per fragment time. */
  round(s: IngestSession, r: number): void;
  /** Listed start times of a StreamIndex, as the manifest gives them (`t` written or implied). */
  listed(name: 'video' | 'audio'): bigint[];
}

function harness(encoderRestart?: EncoderRestart): Harness {
  const clock = { now: 1_000_000 };
  const p = new PublishingPoint(
    'ch1.isml',
    resolveSettings([{ startOnFirstRequest: true, ...(encoderRestart ? { encoderRestart } : {}) }]),
    resolveOptions({ stateFile: false, clock: { now: () => clock.now } }),
  );
  const events: Harness['events'] = {};
  for (const name of ['encoderRestart', 'fragmentDropped', 'inputRejected', 'state'] as const) {
    (p.on as (n: string, l: (e: unknown) => void) => void)(name, (e) => void ((events[name] ??= []) as unknown[]).push(e));
  }
  return {
    p,
    clock,
    events,
    open: (streamId = 'ch1') => {
      const s = p.openIngest(streamId, undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
      s.write(F.header);
      return s;
    },
    round: (s, r) => {
      fragmentsOfRound(r).forEach((f, i) => {
        if (i % 3 === 0 && i > 0) clock.now += 1000;
        s.write(f);
      });
      clock.now += 1000;
    },
    listed: (name) => {
      const stream = parseManifest(p.manifest().body.toString('utf8')).streams.find((s) => s.name === name)!;
      return stream.fragments.map((f) => f.t);
    },
  };
}

describe('an encoder that reconnects within the resend window', () => {
  it('continues: the two resent fragments of every track are dropped as duplicates, nothing is shifted', () => {
    const h = harness();
    const a = h.open();
    h.round(a, 0);
    h.round(a, 1);
    a.abort('disconnected');
    const b = h.open();
    // The Azure rule: resend the last two fragments of every track, then go on.
    for (const f of fragmentsOfRound(1).slice(PER_ROUND - 6)) b.write(f);
    h.round(b, 2);
    expect(h.p.encoderCounts).toEqual({ restarts: 0, duplicatesDropped: 6, refused: 0 });
    expect(h.events.fragmentDropped?.map((e) => e.reason)).toEqual(Array(6).fill('duplicate'));
    expect(h.events.encoderRestart).toBeUndefined();
    b.write(F.mfra);
    expect(h.listed('video')).toEqual(Array.from({ length: 12 }, (_, i) => BigInt(i) * SECOND));
  });
});

describe('a restarted encoder (times back beyond the resend window)', () => {
  /** Round 0 and 1 from encoder A (8 s), then A is gone for `awayMs`, then B pushes from 0 again. */
  function restart(action?: EncoderRestart, awayMs = 3000): { h: Harness; b: IngestSession; error?: unknown } {
    const h = harness(action);
    const a = h.open();
    h.round(a, 0);
    h.round(a, 1);
    a.abort('disconnected');
    h.clock.now += awayMs - 1000; // round() already moved the clock past the last arrival by 1 s
    const b = h.open();
    try {
      h.round(b, 0);
    } catch (error) {
      b.abort('error', error as never);
      return { h, b, error };
    }
    return { h, b };
  }

  it('by default continues the timeline: its times are shifted to follow it after the time it was away', () => {
    const { h, b } = restart(undefined, 3000);
    const [event] = h.events.encoderRestart!;
    // Away 3 s, of which its first 1 s fragment took 1 s to make: a 2 s gap after the point's end (8 s).
    const shift = 8n * SECOND + 2n * SECOND;
    expect(event).toEqual({ point: 'ch1.isml', streamId: 'ch1', track: expect.stringContaining('video'), time: 0n, newest: 7n * SECOND, action: 'continue', shift });
    expect(h.p.encoderCounts).toEqual({ restarts: 1, duplicatesDropped: 0, refused: 0 });
    b.write(F.mfra);
    const video = h.listed('video');
    expect(video.slice(6, 10)).toEqual([6n, 7n, 10n, 11n].map((s) => s * SECOND));
    expect(video.slice(-2)).toEqual([12n * SECOND, 13n * SECOND]);
    // The manifest writes the gap as an explicit `t`.
    expect(h.p.manifest().body.toString()).toContain(`t="${10n * SECOND}"`);
    // Audio moves by the same shift: its priming start (−213333) lands 213333 before the video.
    const audio = h.listed('audio');
    expect(audio).toContain(shift - 213_333n);
    expect(audio.filter((t) => t >= 8n * SECOND)[0]).toBe(shift - 213_333n);
  });

  it('shifts the stored presentation and decode times alike, so the fragments play in sync', () => {
    const h = harness();
    const stored: Array<PointEvents['fragment'][0]> = [];
    h.p.on('fragment', (e) => stored.push(e));
    const a = h.open();
    h.round(a, 0);
    a.abort('disconnected');
    h.clock.now += 5000;
    const b = h.open();
    h.round(b, 0);
    const shift = h.events.encoderRestart![0]!.shift!;
    const before = stored.slice(0, PER_ROUND);
    const after = stored.slice(PER_ROUND);
    after.forEach((e, i) => {
      expect(e.fragment.presentationTime).toBe(before[i]!.fragment.presentationTime + shift);
      expect(e.fragment.decodeTime).toBe(before[i]!.fragment.decodeTime + shift);
    });
  });

  it('the manifest grows again with the restarted encoder’s first fragment (the held-back tail gets its successors)', () => {
    const h = harness();
    const a = h.open();
    h.round(a, 0);
    h.round(a, 1);
    a.abort('disconnected');
    const before = h.listed('video').length;
    const b = h.open();
    for (const f of fragmentsOfRound(0).slice(0, 3)) b.write(f);
    expect(h.listed('video').length).toBe(before + 1);
  });

  it('with encoderRestart=refuse it is refused (409 code ERR_ENCODER_RESTART) and the timeline is untouched', () => {
    const { h, error } = restart('refuse');
    expect(smoothErrorOf(() => { throw error; }).code).toBe('ERR_ENCODER_RESTART');
    expect(h.events.encoderRestart![0]!.action).toBe('refuse');
    expect(h.events.inputRejected![0]!.code).toBe('ERR_ENCODER_RESTART');
    expect(h.p.encoderCounts).toEqual({ restarts: 1, duplicatesDropped: 0, refused: 1 });
    expect(h.p.lookup('video', 100000, [], 7n * SECOND).status).toBe('ok');
    expect(h.listed('video').at(-1)).toBeLessThan(8n * SECOND);
  });

  it('with encoderRestart=reset the window goes and a fresh session starts from its times', () => {
    const h = harness('reset');
    const a = h.open();
    h.round(a, 0);
    h.round(a, 1);
    a.abort('disconnected');
    // A stream of other tracks, attached with nothing stored yet: it joins the fresh session.
    const sibling = h.p.openIngest('other', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    sibling.write(headerWithLsm((smil) => smil.replace(/"(100000|50000|32000)"/g, '"$11"')));
    const b = h.open();
    h.events.state = [];
    h.round(b, 0);
    expect(h.events.state.map((e) => e.state)).toEqual(['ShuttingDown', 'Idle', 'Starting', 'Started']);
    expect(h.events.encoderRestart![0]!.action).toBe('reset');
    expect(h.p.encoderCounts).toEqual({ restarts: 1, duplicatesDropped: 0, refused: 0 });
    expect(sibling.closed).toBe(false);
    expect(h.p.streams.map((s) => [s.id, s.state])).toEqual([
      ['other', 'connected'],
      ['ch1', 'connected'],
    ]);
    expect(h.p.tracks.map((t) => t.bitrate).sort()).toEqual([100000, 1000001, 32000, 320001, 50000, 500001].sort());
    b.write(F.mfra);
    expect(h.listed('video')).toEqual([0n, 1n, 2n, 3n].map((s) => s * SECOND));
  });
});

describe('a redundant encoder that fell behind (another encoder still feeds the same tracks)', () => {
  it('has its fragments dropped (first copy wins), and is refused with ERR_ENCODER_BEHIND once it is clearly not catching up', () => {
    const h = harness();
    const a = h.open('primary');
    for (let r = 0; r < 8; r++) h.round(a, r);
    const b = h.open('backup');
    let error: unknown;
    try {
      for (let r = 0; r < 3; r++) h.round(b, r);
    } catch (err) {
      error = err;
      b.abort('error', err as never);
    }
    expect(smoothErrorOf(() => { throw error; }).code).toBe('ERR_ENCODER_BEHIND');
    expect(h.events.encoderRestart).toBeUndefined();
    expect(h.events.fragmentDropped!.every((e) => e.reason === 'behind' && e.streamId === 'backup')).toBe(true);
    expect(h.p.encoderCounts.refused).toBe(1);
    expect(h.p.encoderCounts.duplicatesDropped).toBe(h.events.fragmentDropped!.length);
    expect(a.closed).toBe(false);
  });

  it('one that sends the same times as the primary is never refused', () => {
    const h = harness();
    const a = h.open('primary');
    const b = h.open('backup');
    for (let r = 0; r < 6; r++) {
      h.round(a, r);
      h.round(b, r);
    }
    expect(h.p.encoderCounts).toEqual({ restarts: 0, duplicatesDropped: 6 * PER_ROUND, refused: 0 });
    expect(b.closed).toBe(false);
  });
});

describe('a fragment far ahead of its track (a time jump)', () => {
  it('is refused with ERR_TIME_JUMP, never taken into the timeline: the real encoder goes on losing nothing', () => {
    const h = harness();
    const a = h.open('real');
    h.round(a, 0);
    const intruder = h.open('intruder');
    const jump = retime(F.fragments[0]!, 10n ** 15n);
    let error: unknown;
    try {
      intruder.write(jump);
    } catch (err) {
      error = err;
      intruder.abort('error', err as never);
    }
    expect(smoothErrorOf(() => { throw error; }).code).toBe('ERR_TIME_JUMP');
    expect(h.p.encoderCounts).toEqual({ restarts: 0, duplicatesDropped: 0, refused: 1 });
    h.round(a, 1);
    expect(h.events.fragmentDropped).toBeUndefined();
    a.write(F.mfra);
    expect(h.listed('video')).toEqual(Array.from({ length: 8 }, (_, i) => BigInt(i) * SECOND));
  });

  it('an encoder that resumes after a pause continues where its clock says (the wall time since counts)', () => {
    const h = harness();
    const a = h.open();
    h.round(a, 0);
    h.clock.now += 20_000; // away 20 s, then on with its own clock: 24 s is 20 s after the end
    h.round(a, 6);
    a.write(F.mfra);
    expect(h.listed('video').slice(3, 5)).toEqual([3n * SECOND, 24n * SECOND]);
    expect(h.p.encoderCounts.refused).toBe(0);
  });
});

describe('restartShift', () => {
  function track(times: Array<[bigint, bigint]>, timescale = 10_000_000, lastArrival = 0): ShiftTrack {
    const timeline = new TrackTimeline();
    for (const [time, duration] of times) timeline.add({ time, duration });
    return { timeline, timescale, lastArrival };
  }

  it('starts after the point’s newest end, plus the time away less the first fragment’s own duration', () => {
    const video = track([[0n, 2n * SECOND], [2n * SECOND, 2n * SECOND]], 10_000_000, 1000);
    const audio = track([[0n, 96_000n], [96_000n, 100_000n]], 48_000, 1000); // ends at 4.08333… s
    const r = restartShift([video, audio], video, 0n, 2n * SECOND, 1000 + 5000, undefined);
    // The newest end is audio's (a timescale of its own, rounded up); away 5 s, 2 s of it producing.
    expect(r).toEqual({ shift: { ticks: 40_833_334n + 3n * SECOND, timescale: 10_000_000 }, reused: false });
  });

  it('never leaves a negative gap (an encoder faster than real time)', () => {
    const video = track([[0n, 2n * SECOND]], 10_000_000, 1000);
    expect(restartShift([video], video, 0n, 2n * SECOND, 1000, undefined).shift.ticks).toBe(2n * SECOND);
  });

  it('reuses the shift of the same restart for another stream (one POST per track) that it places where its track continues', () => {
    const video = track([[0n, SECOND], [SECOND, SECOND], [10n * SECOND, SECOND]]); // restarted: shifted by 10 s
    const audio = track([[0n, SECOND], [SECOND, SECOND]]); // its stream restarts too, a moment later
    const current = { ticks: 10n * SECOND, timescale: 10_000_000 };
    expect(restartShift([video, audio], audio, -213_333n, SECOND, 0, current)).toEqual({ shift: current, reused: true });
    // An encoder whose times the old shift would put far behind its track's end gets a shift of its own.
    expect(restartShift([video, audio], audio, -30n * SECOND, SECOND, 0, current).reused).toBe(false);
  });

  it('converts a shift between timescales rounding up, so a shifted fragment never lands early', () => {
    expect(shiftIn({ ticks: 10_000_001n, timescale: 10_000_000 }, 48_000)).toBe(48_001n);
    expect(shiftIn({ ticks: 48_000n, timescale: 48_000 }, 10_000_000)).toBe(10_000_000n);
    expect(RESEND_FRAGMENTS).toBe(2n);
  });
});

describe('bounds on what a track holds', () => {
  const spec = { trackId: 1, kind: 'video' as const, bitrate: 100_000, width: 160, height: 90 };

  function tiny(): { p: PublishingPoint; s: IngestSession } {
    const p = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
    const s = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    s.write(ingestHeader([spec]));
    return { p, s };
  }

  it('refuses a fragment shorter than 100 ms (ERR_BAD_FRAGMENT) once another follows it: tiny fragments would make the timeline huge', () => {
    const { p, s } = tiny();
    s.write(fragment(1, [{ trackId: 1, time: 0n, duration: 1_000_000n, samples: [payload(16, 1)] }])); // 100 ms: taken
    s.write(fragment(2, [{ trackId: 1, time: 1_000_000n, duration: 999_999n, samples: [payload(16, 2)] }])); // left out
    expect(p.lookup('video', 100000, [], 1_000_000n).status).not.toBe('ok');
    const err = smoothErrorOf(() => s.write(fragment(3, [{ trackId: 1, time: 1_999_999n, duration: 1_000_000n, samples: [payload(16, 3)] }])));
    expect([err.code, err.message]).toEqual(['ERR_BAD_FRAGMENT', expect.stringContaining('100 ms')]);
  });

  it('a short last fragment (an encoder stopped mid-fragment) is left out and its end of stream still ends the point', () => {
    const { p, s } = tiny();
    s.write(fragment(1, [{ trackId: 1, time: 0n, duration: SECOND, samples: [payload(16, 1)] }]));
    s.write(fragment(2, [{ trackId: 1, time: SECOND, duration: 400_000n, samples: [payload(16, 2)] }])); // 40 ms: SIGINT
    s.write(fixture().mfra);
    s.finish();
    expect(p.state).toBe('Stopped');
    expect(p.lookup('video', 100000, [], 0n).status).toBe('ok');
    expect(p.lookup('video', 100000, [], SECOND).status).toBe('not-found');
  });

  it('keeps at most 43,200 fragments per track whatever the window (the oldest go), so the manifest stays bounded', () => {
    const { p, s } = tiny();
    const trimmed: bigint[] = [];
    p.on('fragmentTrimmed', (e) => trimmed.push(e.time));
    const n = 43_210;
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) parts.push(fragment(i + 1, [{ trackId: 1, time: BigInt(i) * SECOND, duration: SECOND, samples: [payload(8, i)] }]));
    s.write(Buffer.concat(parts));
    const times = parseManifest(p.manifest().body.toString('utf8')).streams[0]!.fragments.map((f) => f.t);
    // 43,200 kept, the newest 2 still held back for the lookahead.
    expect(times.length).toBe(43_198);
    expect(times[0]).toBe(10n * SECOND);
    expect(trimmed).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i) * SECOND));
    expect(p.lookup('video', 100000, [], 9n * SECOND).status).toBe('not-found');
  }, 30_000);
});

describe('an encoder that reconnects and ends while its previous connection is still half-open', () => {
  it('ends the idle connection with the end of stream: the point stops and lists its tail at once', () => {
    const h = harness();
    const old = h.open();
    h.round(old, 0); // then the network fails without a FIN: the server still counts this connection
    h.clock.now += 5000;
    const b = h.open();
    h.round(b, 1);
    b.write(F.mfra);
    expect(old.closed).toBe(true);
    expect(h.p.state).toBe('Stopped');
    expect(h.listed('video').at(-1)).toBe(7n * SECOND);
  });

  it('leaves a connection that is still sending alone (a redundant encoder on the same stream id)', () => {
    const h = harness();
    const a = h.open();
    const b = h.open();
    fragmentsOfRound(0).forEach((f, i) => {
      if (i % 3 === 0 && i > 0) h.clock.now += 1000;
      a.write(f);
      b.write(f);
    });
    b.write(F.mfra);
    expect(a.closed).toBe(false);
    expect(h.p.state).toBe('Started');
  });
});

describe('ingest connections at once', () => {
  it('a point takes at most maxIngestConnectionsPerPoint, the points sharing slots at most maxIngestConnections; a closed one frees its slot', () => {
    const options = resolveOptions({ stateFile: false, maxIngestConnections: 3, maxIngestConnectionsPerPoint: 2 });
    const limits = sharedLimits(options);
    const slots = limits.slots;
    const settings = resolveSettings([{ startOnFirstRequest: true }]);
    const a = new PublishingPoint('a.isml', settings, options, limits);
    const b = new PublishingPoint('b.isml', settings, options, limits);
    const open = (p: PublishingPoint) => p.openIngest('s', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    const first = open(a);
    open(a);
    const perPoint = smoothErrorOf(() => open(a));
    expect([perPoint.code, perPoint.message]).toEqual(['ERR_TOO_MANY_CONNECTIONS', expect.stringContaining('at most 2')]);
    open(b);
    const total = smoothErrorOf(() => open(b));
    expect([total.code, total.message]).toEqual(['ERR_TOO_MANY_CONNECTIONS', expect.stringContaining('at most 3')]);
    first.abort('disconnected');
    expect(slots.used).toBe(2);
    expect(() => open(b)).not.toThrow();
    a.close();
    b.close();
    expect(slots.used).toBe(0);
  });
});
