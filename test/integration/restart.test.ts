/**
 * Real ffmpeg encoders killed (SIGKILL) mid-stream and started again to the same URLs, their times from
 * 0 again: one POST, and one POST per track from separate processes. Each `encoderRestart` setting on a
 * point of its own, all pushed at once against one server:
 * - `continue` (default): the timeline goes on, every stream of the restart shifted alike (audio and
 *   video stay in sync, bitrates stay aligned), the gap no longer than the time the encoder was away;
 * - `refuse`: the restarted encoder gets 409 and its connection closes; the window is untouched;
 * - `reset`: the window goes and a fresh session starts from the encoder's own times.
 */
import { ffmpegPath, withTool } from '../helpers/tools';
import { Push, PushOptions, push, pushTracks } from '../helpers/ffmpeg';
import { get, parseManifest, until } from '../helpers/raw-ingest';
import { TestServer, startServer } from '../helpers/server';
import type { PointEvents } from '../../lib/point/events';

const FFMPEG = ffmpegPath();
const SECOND = 10_000_000n;
/** Fragments each encoder delivers before it is killed, and after it restarts. */
const BEFORE = 3;
const AFTER = 3;

type Events = { [K in 'encoderRestart' | 'inputRejected' | 'state']: Array<PointEvents[K][0]> };

interface Run {
  point: string;
  events: Events;
  /** Wall ms: when the first encoder was killed, and when its restart was spawned. */
  killedAt: number;
  restartedAt: number;
  restarted: Push[];
}

function encoders(o: PushOptions, processes: boolean): Push[] {
  return processes ? pushTracks(o) : [push(o)];
}

async function kill(pushes: Push[]): Promise<void> {
  for (const p of pushes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(pushes.map((p) => p.done));
}

/** Video start times the manifest of `point` lists now (the first StreamIndex's). */
async function listed(s: TestServer, point: string, name = 'video'): Promise<bigint[]> {
  const r = await get(`${s.base}/${point}/Manifest`);
  if (r.status !== 200) return [];
  return parseManifest(r.body.toString('utf8')).streams.find((x) => x.name === name)?.fragments.map((f) => f.t) ?? [];
}

/** Pushes to `point`, kills the encoder(s) after {@link BEFORE} listed fragments and starts them again. */
async function restartRun(s: TestServer, point: string, processes: boolean): Promise<Run> {
  const events: Events = { encoderRestart: [], inputRejected: [], state: [] };
  for (const name of Object.keys(events) as Array<keyof Events>) {
    s.handler.origin.on(name, (e: { point: string }) => {
      if (e.point === point) (events[name] as unknown[]).push(e);
    });
  }
  const o: PushOptions = { ffmpeg: FFMPEG!, url: `${s.base}/${point}`, seconds: 60, bitrates: [200, 100] };
  const first = encoders(o, processes);
  try {
    await until(async () => (await listed(s, point)).length >= BEFORE, 30_000, 200);
  } finally {
    await kill(first);
  }
  const killedAt = Date.now();
  const restarted = encoders(o, processes);
  return { point, events, killedAt, restartedAt: Date.now(), restarted };
}

describe('real ffmpeg restarts (SIGKILL, then the same URL again from time 0)', () => {
  let s: TestServer;
  const runs = new Map<string, Promise<Run>>();
  const all: Push[] = [];

  beforeAll(async () => {
    if (!FFMPEG) return;
    s = await startServer();
    s.define('single.isml');
    s.define('tracks.isml');
    s.define('refuse.isml', { encoderRestart: 'refuse' });
    s.define('reset.isml', { encoderRestart: 'reset' });
    // All four at once: they share the two cores for ~20 s instead of taking ~80 s one by one.
    for (const [point, processes] of [['single.isml', false], ['tracks.isml', true], ['refuse.isml', false], ['reset.isml', false]] as const) {
      const run = restartRun(s, point, processes);
      run.then((r) => all.push(...r.restarted), () => undefined);
      runs.set(point, run);
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(runs.values());
    await kill(all);
    if (s) await s.close();
  });

  /** The continue cases: the timeline, the shifts and the gap once the restart delivered. */
  async function continued(point: string, streams: number): Promise<void> {
    const run = await runs.get(point)!;
    const before = await listed(s, point);
    await until(async () => (await listed(s, point)).length >= before.length + AFTER, 30_000, 200);
    const video = await listed(s, point);
    const audio = await listed(s, point, 'audio');
    const restarts = run.events.encoderRestart;
    // One event per restarted stream (one POST: 1; per track: 2 video + 1 audio), all with the same shift.
    expect(restarts.map((e) => e.action)).toEqual(Array(streams).fill('continue'));
    const shifts = new Set(restarts.map((e) => e.shift));
    expect(shifts.size).toBe(1);
    const shift = restarts[0]!.shift!;
    // The timeline only goes forward: one gap, where the restarted encoder's fragments begin.
    const steps = video.slice(1).map((t, i) => t - video[i]!);
    expect(steps.every((d) => d > 0n)).toBe(true);
    const gapAt = video.findIndex((t) => t >= shift);
    expect(gapAt).toBeGreaterThan(0);
    expect(video[gapAt]).toBe(shift); // the restarted encoder's video starts at 0: it lands at the shift
    const gap = video[gapAt]! - video[gapAt - 1]! - 2n * SECOND;
    expect(gap).toBeGreaterThanOrEqual(0n);
    // No longer than the encoder was away (kill to first new fragment), with a second of slack for timing.
    const awayMs = Date.now() - run.killedAt;
    console.log(`${point}: shift ${shift}, gap ${gap / 10_000n} ms, ${awayMs} ms since the kill`);
    expect(gap).toBeLessThanOrEqual((BigInt(awayMs) + 1000n) * (SECOND / 1000n));
    // Audio moved by the same shift: its first restarted fragment (ffmpeg's priming, −213333) lands just before it.
    expect(audio).toContain(shift - 213_333n);
    const counts = s.handler.origin.points().find((p) => p.path === point)!.encoderCounts;
    expect(counts).toMatchObject({ restarts: streams, refused: 0 });
    // Every listed fragment answers, on both sides of the gap.
    for (const t of [video[gapAt - 1]!, video[gapAt]!]) {
      expect((await get(`${s.base}/${point}/QualityLevels(200000)/Fragments(video=${t})`)).status).toBe(200);
    }
  }

  withTool('ffmpeg', FFMPEG)('one POST: the restarted encoder continues the timeline after its gap', () => continued('single.isml', 1), 60_000);

  withTool('ffmpeg', FFMPEG)(
    'one POST per track (separate processes): every stream takes the same shift, audio and video stay in sync',
    () => continued('tracks.isml', 3),
    60_000,
  );

  withTool('ffmpeg', FFMPEG)(
    'encoderRestart=refuse: the restarted encoder gets 409 ERR_ENCODER_RESTART and ffmpeg stops; the window is untouched',
    async () => {
      const run = await runs.get('refuse.isml')!;
      const before = await listed(s, 'refuse.isml');
      // ffmpeg never reads the status: the server closes the connection, and ffmpeg fails its next write.
      const exit = await run.restarted[0]!.done;
      expect(exit.code).not.toBe(0);
      expect(run.events.encoderRestart.map((e) => e.action)).toEqual(['refuse']);
      expect(run.events.inputRejected.map((e) => e.code)).toEqual(['ERR_ENCODER_RESTART']);
      expect(s.handler.origin.points().find((p) => p.path === 'refuse.isml')!.encoderCounts).toMatchObject({ restarts: 1, refused: 1 });
      expect((await listed(s, 'refuse.isml')).slice(0, before.length)).toEqual(before);
      expect(before[0]).toBe(0n);
    },
    60_000,
  );

  withTool('ffmpeg', FFMPEG)(
    'encoderRestart=reset: the window goes and a fresh session lists the encoder’s own times from 0',
    async () => {
      const run = await runs.get('reset.isml')!;
      await until(() => run.events.state.some((e) => e.state === 'Idle'), 30_000, 200);
      await until(async () => (await listed(s, 'reset.isml')).length >= 1, 30_000, 200);
      expect(run.events.encoderRestart.map((e) => e.action)).toEqual(['reset']);
      const states = run.events.state.map((e) => e.state);
      expect(states.slice(states.indexOf('ShuttingDown'))).toEqual(['ShuttingDown', 'Idle', 'Starting', 'Started']);
      const video = await listed(s, 'reset.isml');
      expect(video[0]).toBe(0n);
      expect(video.length).toBeLessThan(BEFORE + 2);
    },
    60_000,
  );
});
