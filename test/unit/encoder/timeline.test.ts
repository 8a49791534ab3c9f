/**
 * Loop arithmetic of the simulated encoder: exact bigint times at UTC scale (beyond 2^53), one period
 * for every track, continuous timelines at every loop seam (AAC priming overlap, shorter tracks), and
 * timescale conversion.
 */
import { FragmentPlan, LoopTimeline, TimelineTrack } from '../../../lib/encoder/timeline';

const S = 10_000_000n; // ticks per second

/** Fragments of `d` ticks from `start`, `n` of them. */
function even(start: bigint, d: bigint, n: number): Array<{ time: bigint; duration: bigint }> {
  return Array.from({ length: n }, (_, i) => ({ time: start + BigInt(i) * d, duration: d }));
}

/** ffmpeg-like: 3 × 2 s video; AAC from −213 333 (priming) with uneven fragments ending at 6 s. */
const VIDEO: TimelineTrack = { type: 'video', timescale: 10_000_000, fragments: even(0n, 2n * S, 3) };
const AUDIO: TimelineTrack = {
  type: 'audio',
  timescale: 10_000_000,
  fragments: [
    { time: -213_333n, duration: 19_413_333n },
    { time: 19_200_000n, duration: 20_053_333n },
    { time: 39_253_333n, duration: 20_746_667n },
  ],
};

/** Every plan of `loops` loops of a track, skipped ones left out. */
function plans(t: LoopTimeline, track: number, count: number, loops: number): FragmentPlan[] {
  const out: FragmentPlan[] = [];
  for (let loop = 0; loop < loops; loop++) {
    for (let i = 0; i < count; i++) {
      const p = t.plan(track, loop, i);
      if (p) out.push(p);
    }
  }
  return out;
}

function expectContinuous(list: FragmentPlan[]): void {
  for (let i = 1; i < list.length; i++) {
    expect({ at: i, start: list[i]!.time }).toEqual({ at: i, start: list[i - 1]!.time + list[i - 1]!.duration });
  }
}

describe('LoopTimeline', () => {
  // 2025-11-25T12:00:00.0000001Z in 100-ns units: odd, so no double holds it.
  const UTC = 17_640_720_000_000_001n;

  it('starts the reference track at `start` exactly, beyond 2^53', () => {
    expect(UTC > 2n ** 53n).toBe(true);
    const t = new LoopTimeline([VIDEO, AUDIO], UTC);
    expect(t.reference).toBe(0);
    expect(t.period).toBe(6n * S);
    expect(t.plan(0, 0, 0)!.time).toBe(UTC);
    expect(t.plan(1, 0, 0)!.time).toBe(UTC - 213_333n); // the priming start is kept in loop 0
    expect(t.shift(0, 1_000_000)).toBe(UTC + 1_000_000n * 6n * S); // a million loops later, still exact
  });

  it('keeps video and audio continuous across loop seams, audio overlap cut at the seam', () => {
    const t = new LoopTimeline([VIDEO, AUDIO], UTC);
    const video = plans(t, 0, 3, 4);
    const audio = plans(t, 1, 3, 4);
    expect(video).toHaveLength(12);
    expect(audio).toHaveLength(12);
    expectContinuous(video);
    expectContinuous(audio);
    // Loop k of every track is shifted by k periods; only the audio's first fragment after a seam changes.
    for (let loop = 1; loop < 4; loop++) {
      const seam = UTC + BigInt(loop) * 6n * S;
      expect(t.plan(0, loop, 0)).toMatchObject({ time: seam, duration: 2n * S, overlap: 0n });
      expect(t.plan(1, loop, 0)).toMatchObject({ time: seam, duration: 19_200_000n, overlap: 213_333n });
      expect(t.plan(1, loop, 1)).toMatchObject({ time: seam + 19_200_000n, duration: 20_053_333n, overlap: 0n });
      // The shift applies to source times (tfdt) unchanged by the seam.
      expect(t.plan(1, loop, 0)!.shift).toBe(UTC + BigInt(loop) * 6n * S);
    }
    // Both tracks end each loop at the same instant: no drift, however many loops.
    const lastV = t.plan(0, 999, 2)!;
    const lastA = t.plan(1, 999, 2)!;
    expect(lastV.time + lastV.duration).toBe(lastA.time + lastA.duration);
  });

  it('stretches the seam fragment of a track shorter than the period, and skips one the previous loop covers', () => {
    const short: TimelineTrack = { type: 'audio', timescale: 10_000_000, fragments: even(0n, 2n * S - 1000n, 3) };
    const t = new LoopTimeline([VIDEO, short], 0n);
    expectContinuous(plans(t, 1, 3, 3));
    expect(t.plan(1, 1, 0)).toMatchObject({ time: 6n * S - 3000n, duration: 2n * S - 1000n + 3000n, overlap: -3000n });
    const long: TimelineTrack = { type: 'audio', timescale: 10_000_000, fragments: [...even(-2n * S, 2n * S, 4)] };
    const u = new LoopTimeline([VIDEO, long], 0n);
    // Loop 1 of `long` starts at 4 s, inside loop 0's last fragment [4 s, 6 s): its first fragment is skipped.
    expect(u.plan(1, 1, 0)).toBeUndefined();
    expect(u.plan(1, 1, 1)).toMatchObject({ time: 6n * S, duration: 2n * S, overlap: 0n });
    expectContinuous(plans(u, 1, 4, 3));
  });

  it('converts the period to other timescales exactly when it divides, and never drifts', () => {
    const audio48k: TimelineTrack = { type: 'audio', timescale: 48_000, fragments: even(0n, 96_000n, 3) }; // 3 × 2 s
    const t = new LoopTimeline([VIDEO, audio48k], UTC);
    expect(t.base(1)).toBe((UTC * 48_000n) / S);
    expect(t.plan(1, 1, 0)!.time).toBe((UTC * 48_000n) / S + 288_000n);
    expectContinuous(plans(t, 1, 3, 5));
    // A 90 kHz video reference and a 10 MHz audio: 6 s = 540 000 ticks.
    const v90: TimelineTrack = { type: 'video', timescale: 90_000, fragments: even(0n, 180_000n, 3) };
    const u = new LoopTimeline([AUDIO, v90], 0n);
    expect(u.reference).toBe(1);
    expect(u.period).toBe(540_000n);
    expect(u.plan(0, 7, 1)!.time).toBe(19_200_000n + 7n * 6n * S);
  });

  it('orders sends by fragment end relative to the start', () => {
    const t = new LoopTimeline([VIDEO, AUDIO], UTC);
    expect(t.dueMicros(t.plan(0, 0, 0)!)).toBe(2_000_000);
    expect(t.dueMicros(t.plan(1, 0, 0)!)).toBe(1_920_000);
    expect(t.dueMicros(t.plan(0, 2, 1)!)).toBe(16_000_000);
  });

  it('rejects a negative start, empty tracks and a reference without duration', () => {
    expect(() => new LoopTimeline([VIDEO], -1n)).toThrow(RangeError);
    expect(() => new LoopTimeline([{ ...VIDEO, fragments: [] }], 0n)).toThrow(RangeError);
    expect(() => new LoopTimeline([{ ...VIDEO, fragments: [{ time: 0n, duration: 0n }] }], 0n)).toThrow(RangeError);
  });
});
