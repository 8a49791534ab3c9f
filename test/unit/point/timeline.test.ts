/**
 * Track timelines and StreamIndex listing on their own: hold-back and publication, successors for the
 * tfrf, starts named by their double rounding, the DVR trim (published fragments only), evictions from
 * the head, fragments the store lost in the middle, and the listed edge across bitrates (a stalled
 * bitrate, or one with nothing yet, does not hold it back; one that has fragments but has published none
 * caps it at its newest fragment).
 */
import type { FragmentTime } from '../../../lib/model';
import { ListedTrack, TrackTimeline, listGroup, trimBound } from '../../../lib/point/timeline';

const D = 20_000_000n;
const times = (list: readonly FragmentTime[]): bigint[] => list.map((f) => f.time);

/** A timeline with fragments at 0, D, 2D … (n of them). */
function timeline(n: number, lookahead = 2): TrackTimeline {
  const t = new TrackTimeline();
  for (let i = 0; i < n; i++) {
    t.add({ time: BigInt(i) * D, duration: D });
    t.publishReady(lookahead);
  }
  return t;
}

describe('TrackTimeline', () => {
  it('holds back the newest `lookahead` fragments and publishes a fragment once that many follow it', () => {
    const t = new TrackTimeline();
    expect(times(t.publishReady(2))).toEqual([]);
    t.add({ time: 0n, duration: D });
    t.add({ time: D, duration: D });
    expect(times(t.publishReady(2))).toEqual([]);
    expect(t.published()).toEqual([]);
    t.add({ time: 2n * D, duration: D });
    expect(times(t.publishReady(2))).toEqual([0n]);
    expect(t.isPublished(t.find(0n)!)).toBe(true);
    expect(t.isPublished(t.find(D)!)).toBe(false);
    expect(t.find(5n)).toBeUndefined();
    expect(t.newestPublished()?.time).toBe(0n);
    expect(times(t.publishAll())).toEqual([D, 2n * D]);
    expect(times(t.published())).toEqual([0n, D, 2n * D]);
  });

  it('accepts only times after the newest ever added, even after a trim', () => {
    const t = timeline(5);
    expect(t.accepts(4n * D)).toBe(false);
    expect(t.accepts(3n * D)).toBe(false);
    expect(t.accepts(5n * D)).toBe(true);
    t.publishAll();
    t.trim(10n * D);
    expect(t.published()).toEqual([]);
    expect(t.accepts(D)).toBe(false);
    expect(t.newest).toBe(4n * D);
    expect(t.lastDuration).toBe(D);
  });

  it('gives the successors of a fragment (published or held), at most n, and counts them without a list', () => {
    const t = timeline(5);
    const first = t.find(0n)!;
    expect(times(t.successors(first, 2))).toEqual([D, 2n * D]);
    expect(t.successorCount(first, 2)).toBe(2);
    const third = t.find(2n * D)!;
    expect(times(t.successors(third, 5))).toEqual([3n * D, 4n * D]);
    expect(t.successorCount(third, 5)).toBe(2);
    expect(t.successorCount(t.find(4n * D)!, 2)).toBe(0);
  });

  it('trims only published fragments that end at or before the bound', () => {
    const t = timeline(6); // 0..3 published, 4 and 5 held
    expect(times(t.trim(2n * D))).toEqual([0n, D]);
    expect(times(t.published())).toEqual([2n * D, 3n * D]);
    // Held fragments stay even when the bound is past them.
    expect(times(t.trim(100n * D))).toEqual([2n * D, 3n * D]);
    expect(t.find(5n * D)).toBeDefined();
    expect(t.isPublished(t.find(4n * D)!)).toBe(false);
  });

  it('removes through a time the store evicted (oldest first), held ones included', () => {
    const t = timeline(4); // 0, D published; 2D, 3D held
    expect(times(t.removeThrough(2n * D))).toEqual([0n, D, 2n * D]);
    expect(t.find(3n * D)).toBeDefined();
    expect(t.published()).toEqual([]);
    expect(times(t.removeThrough(7n))).toEqual([]); // not a fragment of the timeline
    expect(times(t.publishAll())).toEqual([3n * D]);
  });

  it('skips a fragment the store lost in the middle: not listed, not a successor, not found', () => {
    const t = timeline(5);
    expect(t.drop(D)?.time).toBe(D);
    expect(t.drop(D)).toBeUndefined();
    expect(t.find(D)).toBeUndefined();
    expect(times(t.published())).toEqual([0n, 2n * D]);
    expect(times(t.successors(t.find(0n)!, 2))).toEqual([2n * D, 3n * D]);
    expect(t.successorCount(t.find(0n)!, 2)).toBe(2);
    expect(times(t.trim(3n * D))).toEqual([0n, 2n * D]);
  });

  it('stays proportional to what it holds over a long run (compaction)', () => {
    const t = new TrackTimeline();
    for (let i = 0; i < 50_000; i++) {
      t.add({ time: BigInt(i) * D, duration: D });
      t.publishReady(2);
      t.trim(BigInt(i - 10) * D);
    }
    expect(t.published().length).toBeLessThanOrEqual(12);
    expect(t.isPublished(t.find(49_990n * D)!)).toBe(true);
  });
});

describe('TrackTimeline.findRounded', () => {
  /** An audio-like start above 2^53 (doubles there are 2 apart) and its odd duration. */
  const START = 17_640_000_599_253_333n;
  const AUDIO = 10_026_667n;
  /** The integer a player that keeps times in doubles sends for `time`. */
  const rounded = (time: bigint): bigint => BigInt(Number(time));

  /** A timeline with fragments at the given starts (each lasting up to the next), all published. */
  function at(...starts: bigint[]): TrackTimeline {
    const t = new TrackTimeline();
    starts.forEach((time, i) => t.add({ time, duration: (starts[i + 1] ?? time + 2n) - time }));
    t.publishAll();
    return t;
  }

  it('resolves the double rounding of every start of an audio-like timeline to that start', () => {
    const starts = Array.from({ length: 12 }, (_, i) => START + BigInt(i) * AUDIO);
    const t = at(...starts);
    expect(starts.filter((s) => rounded(s) !== s).length).toBeGreaterThan(0); // the test means something
    for (const s of starts) expect([s, t.findRounded(rounded(s))?.time]).toEqual([s, s]);
    // The entry is the timeline's own (the one find gives): it keys the packaged headers.
    expect(t.findRounded(rounded(START))).toBe(t.find(START));
  });

  it('an exact start that is a double resolves to itself; a rounding only to the start it rounds from', () => {
    const t = at(START, START + AUDIO); // …333 → …332; …10000 is a double
    expect(rounded(START + AUDIO)).toBe(START + AUDIO);
    expect(t.findRounded(START + AUDIO)?.time).toBe(START + AUDIO);
    expect(rounded(START)).toBe(START - 1n);
    expect(t.findRounded(START - 1n)?.time).toBe(START);
    // Doubles next to it that are no start's rounding.
    expect(t.findRounded(START + 1n)).toBeUndefined();
    expect(t.findRounded(START - 3n)).toBeUndefined();
    expect(t.findRounded(START + AUDIO + 2n)).toBeUndefined();
    expect(t.findRounded(START + 1000n * AUDIO)).toBeUndefined();
  });

  it('resolves roundings at higher magnitudes (doubles 1024 apart) and across a power of two', () => {
    const far = 2n ** 62n + 12_345n;
    expect(rounded(far) - far).toBe(-57n);
    expect(at(far, far + AUDIO).findRounded(rounded(far))?.time).toBe(far);
    // 2^54 − 1 (doubles 2 apart below) rounds up to 2^54 (doubles 4 apart above).
    const below = 2n ** 54n - 1n;
    expect(rounded(below)).toBe(2n ** 54n);
    expect(at(below - 2n * AUDIO, below - AUDIO, below).findRounded(2n ** 54n)?.time).toBe(below);
  });

  it('gives nothing when two starts round to the same double', () => {
    // …331 and …333 both round to …332 (ties to even).
    expect([rounded(START - 2n), rounded(START)]).toEqual([START - 1n, START - 1n]);
    expect(at(START - 2n, START).findRounded(START - 1n)).toBeUndefined();
    // Also when one of them is that double itself (find still resolves the exact start).
    const t = at(START - 1n, START);
    expect(t.findRounded(START - 1n)).toBeUndefined();
    expect(t.find(START - 1n)?.time).toBe(START - 1n);
    // Across a power of two: 2^54 − 1 and 2^54 + 1 both round to 2^54.
    expect(at(2n ** 54n - 1n, 2n ** 54n + 1n).findRounded(2n ** 54n)).toBeUndefined();
  });

  it('gives nothing for a time no double holds (a double player never sends it)', () => {
    const t = at(START, START + AUDIO);
    expect(t.findRounded(START)).toBeUndefined(); // odd above 2^53: not a double, even though it is a start
    expect(t.findRounded(2n ** 62n + 1n)).toBeUndefined();
  });

  it('ignores a fragment the store lost', () => {
    const t = at(START - 2n, START, START + AUDIO);
    expect(t.findRounded(START - 1n)).toBeUndefined();
    t.drop(START - 2n);
    expect(t.findRounded(START - 1n)?.time).toBe(START);
    t.drop(START);
    expect(t.findRounded(START - 1n)).toBeUndefined();
  });

  it('ignores fragments trimmed or evicted from the head', () => {
    const t = at(START - 2n, START, START + AUDIO, START + 2n * AUDIO);
    expect(times(t.trim(START))).toEqual([START - 2n]); // …331 ends at …333
    expect(t.findRounded(START - 1n)?.time).toBe(START);
    expect(times(t.removeThrough(START))).toEqual([START]);
    expect(t.findRounded(START - 1n)).toBeUndefined();
    expect(t.findRounded(rounded(START + 2n * AUDIO))?.time).toBe(START + 2n * AUDIO);
  });

  it('finds held (not yet published) fragments too', () => {
    const t = new TrackTimeline();
    for (let i = 0; i < 3; i++) t.add({ time: START + BigInt(i) * AUDIO, duration: AUDIO });
    expect(t.publishReady(2).length).toBe(1);
    const newest = START + 2n * AUDIO;
    expect(t.findRounded(rounded(newest))?.time).toBe(newest);
    expect(t.isPublished(t.findRounded(rounded(newest))!)).toBe(false);
  });
});

describe('listGroup and trimBound', () => {
  const track = (n: number, live = 1, lookahead = 2): ListedTrack => ({ timeline: timeline(n, lookahead), live });

  it('lists the union of the bitrates up to the newest time every live bitrate has', () => {
    const list = listGroup([track(10), track(8)], 2, 0, 10_000_000);
    // 8 fragments on the slower bitrate, 6 published: the edge is its newest published (5D).
    expect(times(list)).toEqual([0n, D, 2n * D, 3n * D, 4n * D, 5n * D]);
  });

  it('a bitrate that stalled more than lookahead + 2 fragments behind, or has nothing, does not hold the edge', () => {
    expect(times(listGroup([track(20), track(8)], 2, 0, 10_000_000)).at(-1)).toBe(17n * D);
    expect(times(listGroup([track(10), { timeline: new TrackTimeline(), live: 1 }], 2, 0, 10_000_000)).at(-1)).toBe(7n * D);
    // A bitrate no encoder feeds any more does not either.
    expect(times(listGroup([track(10), track(4, 0)], 2, 0, 10_000_000)).at(-1)).toBe(7n * D);
  });

  it('a live bitrate that has fragments but has published none caps the edge at its newest fragment', () => {
    // Lookahead 1: the leader has 0..3D and lists 0..2D; the new bitrate has only 0 (held back).
    expect(times(listGroup([track(4, 1, 1), track(1, 1, 1)], 1, 0, 10_000_000))).toEqual([0n]);
    // Lookahead 2: the leader lists 0..2D; the new bitrate has 0 and D, none published.
    expect(times(listGroup([track(5), track(2)], 2, 0, 10_000_000))).toEqual([0n, D]);
    // Whichever order the bitrates come in.
    expect(times(listGroup([track(2), track(5)], 2, 0, 10_000_000))).toEqual([0n, D]);
  });

  it('a bitrate that joins mid-timeline caps the edge at its first fragment; earlier times of the others stay listed', () => {
    const joined = new TrackTimeline();
    joined.add({ time: 2n * D, duration: D });
    expect(joined.publishReady(2)).toEqual([]);
    expect(times(listGroup([track(6), { timeline: joined, live: 1 }], 2, 0, 10_000_000))).toEqual([0n, D, 2n * D]);
    // Once it publishes, its newest published caps the edge as for any bitrate.
    joined.add({ time: 3n * D, duration: D });
    joined.add({ time: 4n * D, duration: D });
    expect(times(joined.publishReady(2))).toEqual([2n * D]);
    expect(times(listGroup([track(6), { timeline: joined, live: 1 }], 2, 0, 10_000_000))).toEqual([0n, D, 2n * D]);
    joined.add({ time: 5n * D, duration: D });
    joined.publishReady(2);
    expect(times(listGroup([track(6), { timeline: joined, live: 1 }], 2, 0, 10_000_000))).toEqual([0n, D, 2n * D, 3n * D]);
  });

  it('a new bitrate that lags more than lookahead + 2 fragments counts as stalled; one nobody feeds does not cap', () => {
    // Leader newest 9D, lists 0..7D. A new bitrate at 0 lags 9D > 4D: it does not hold the edge.
    expect(times(listGroup([track(10), track(1)], 2, 0, 10_000_000)).at(-1)).toBe(7n * D);
    // At 5D it lags 4D, within the allowance: it caps.
    const near = new TrackTimeline();
    near.add({ time: 5n * D, duration: D });
    expect(times(listGroup([track(10), { timeline: near, live: 1 }], 2, 0, 10_000_000)).at(-1)).toBe(5n * D);
    // Its encoder left (its held fragments were not published): it does not cap either.
    expect(times(listGroup([track(10), { timeline: near, live: 0 }], 2, 0, 10_000_000)).at(-1)).toBe(7n * D);
  });

  it('lists only the DVR window, and trims two fragments beyond it', () => {
    const tracks = [track(30)];
    const list = listGroup(tracks, 2, 10, 10_000_000); // 10 s = 5 fragments of 2 s
    expect(times(list)).toEqual([23n * D, 24n * D, 25n * D, 26n * D, 27n * D]);
    // Newest published ends at 28D; the window is 5D; two more fragments stay for slow clients.
    expect(trimBound(tracks, 10, 10_000_000)).toBe(28n * D - 5n * D - 2n * D);
    expect(trimBound(tracks, 0, 10_000_000)).toBeUndefined();
    expect(trimBound([{ timeline: new TrackTimeline(), live: 1 }], 10, 10_000_000)).toBeUndefined();
  });
});
